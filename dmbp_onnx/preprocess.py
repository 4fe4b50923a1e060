"""Image / array -> model input, configured from the ONNX ``metadata_props`` and the declared input shape.

Metadata keys (all optional; command-line flags override them):

* ``dmbp.layout``: ``NCHW`` or ``NHWC``.
* ``dmbp.size``: model input ``height,width``, e.g. ``64,64``.
* ``dmbp.scale``: input = (pixel / scale - mean) / std, pixels in 0-255, e.g. ``255``.
* ``dmbp.mean``, ``dmbp.std``: per-channel values (or one for all), e.g. ``0.5,0.5,0.5``.
* ``dmbp.class_names``: JSON list of class names, e.g. ``["circle", "square"]``.
* ``dmbp.output``: ``logits``, ``probabilities`` or ``map`` (a score map, e.g. CRAFT).

Without metadata the layout is guessed from the declared input shape (a channel dimension of 1 or
3 at axis 1 means NCHW, else at the last axis NHWC; NCHW when neither tells) and the size is the
declared spatial size (``None``, i.e. the image's own size, when it is dynamic).

Images are read with Pillow (first frame; EXIF orientation applied). Transparent images (RGBA,
LA, palette with transparency) are composited on white; 16-bit grayscale is scaled to the 0-255
range; grayscale images given to a 3-channel model are replicated to RGB; a 1-channel model gets
the ITU-R 601-2 luma of RGB images.
Resizing is Pillow's bilinear filter (antialiased when shrinking), done in float32.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from PIL import Image, ImageOps, UnidentifiedImageError

from dmbp_onnx.arrays import read_npy
from dmbp_onnx.errors import InputError
from dmbp_onnx.graph.specs import declared_inputs

LAYOUTS = ("NCHW", "NHWC")
OUTPUT_KINDS = ("logits", "probabilities", "map")
_META_KEYS = {
    "layout": "dmbp.layout",
    "size": "dmbp.size",
    "scale": "dmbp.scale",
    "mean": "dmbp.mean",
    "std": "dmbp.std",
    "class_names": "dmbp.class_names",
    "output": "dmbp.output",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes the model's input tensor.

    Parameters
    ----------
    layout : str
        ``"NCHW"`` or ``"NHWC"``.
    size : tuple of int or None
        Model input ``(height, width)``; ``None`` keeps the image's own size.
    channels : int
        Input channels the model expects (1 = grayscale, 3 = RGB).
    scale : float
        Pixels (0-255) are divided by ``scale`` before normalisation.
    mean, std : tuple of float
        Per-channel (or single) normalisation: ``(pixel / scale - mean) / std``.
    class_names : tuple of str or None
        Names of the output classes, if known.
    output : str
        ``"logits"``, ``"probabilities"`` or ``"map"``: what the model's output holds.
    """

    layout: str = "NCHW"
    size: tuple[int, int] | None = None
    channels: int = 3
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    class_names: tuple[str, ...] | None = None
    output: str = "logits"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise InputError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.output not in OUTPUT_KINDS:
            raise InputError(f"output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        if self.channels not in (1, 3):
            raise InputError(
                f"the model expects {self.channels} input channels; images give 1 (grayscale) or 3 (RGB)"
            )
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise InputError(f"size must be (height, width) with positive values, got {self.size}")
        if not math.isfinite(self.scale) or self.scale <= 0:
            raise InputError(f"scale must be a positive number, got {self.scale}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise InputError(
                    f"{name} has {len(values)} values; the model has {self.channels} input channels"
                )
            if not all(math.isfinite(v) for v in values):
                raise InputError(f"{name} must be finite, got {values}")
        if any(v == 0 for v in self.std):
            raise InputError(f"std must be non-zero, got {self.std}")

    @classmethod
    def from_model(
        cls,
        model: onnx.ModelProto,
        declared_input_shape: Sequence[int | str | None] | None = None,
        **overrides: Any,
    ) -> "PreprocessConfig":
        """Build the configuration from metadata, the declared input shape and overrides.

        Parameters
        ----------
        model : onnx.ModelProto
            The model; its ``metadata_props`` ``dmbp.*`` keys are read.
        declared_input_shape : sequence, optional
            The input's declared shape (ints; ``None``/str for dynamic dims). Default: read from
            the model's first non-initializer graph input.
        **overrides
            Any field of this class (value ``None`` = not given), in Python form or in the
            metadata's string form (e.g. ``size="64,64"``); they win over metadata.

        Returns
        -------
        PreprocessConfig

        Raises
        ------
        InputError
            A metadata value or override is malformed, or the size contradicts a fixed
            declared input shape.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown preprocessing option(s): {', '.join(unknown)}")
        meta = {p.key: p.value for p in model.metadata_props}
        values: dict[str, Any] = {}
        for name, key in _META_KEYS.items():
            if key in meta:
                values[name] = _parse(name, meta[key], f"metadata_props '{key}'")
        for name, value in overrides.items():
            if value is not None:
                values[name] = _parse(name, value, f"option '{name}'")

        shape = _dims(declared_input_shape if declared_input_shape is not None else _declared_shape(model))
        if "layout" not in values:
            values["layout"] = _guess_layout(shape)
        if shape is not None and len(shape) == 4:
            axis = 1 if values["layout"] == "NCHW" else 3
            spatial = (shape[2], shape[3]) if axis == 1 else (shape[1], shape[2])
            if shape[axis] is not None:
                if "channels" not in values:
                    values["channels"] = shape[axis]
                elif values["channels"] != shape[axis]:
                    raise InputError(
                        f"channels {values['channels']} contradicts the model's declared input "
                        f"shape {_show(shape)} ({values['layout']})"
                    )
            if None not in spatial:
                if "size" not in values:
                    values["size"] = spatial
                elif tuple(values["size"]) != spatial:
                    raise InputError(
                        f"size {tuple(values['size'])} contradicts the model's declared input "
                        f"shape {_show(shape)} ({values['layout']})"
                    )
        if "channels" not in values:
            longest = max(len(values.get("mean", ())), len(values.get("std", ())))
            values["channels"] = longest if longest > 1 else 3
        return cls(**values)

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (h, w, channels) in 0-255 -> float32 model input with a batch axis, in the layout."""
        x = (pixels / np.float32(self.scale) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        x = x.astype(np.float32)[None]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)


@dataclass(frozen=True)
class LoadedImage:
    """An image read for a model.

    Attributes
    ----------
    array : numpy.ndarray
        float32 model input of shape (1, C, H, W) or (1, H, W, C), normalised.
    original : numpy.ndarray
        float32 RGB (h, w, 3) in [0, 1] at the file's own resolution (for overlays).
    path : pathlib.Path
        The file read.
    """

    array: np.ndarray
    original: np.ndarray
    path: Path


def load_image(path: str | Path, config: PreprocessConfig) -> LoadedImage:
    """Read an image file and turn it into the model's input.

    Parameters
    ----------
    path : str or pathlib.Path
        Any image Pillow reads (PNG, JPEG, BMP, ...).
    config : PreprocessConfig
        Layout, size, channels and normalisation.

    Returns
    -------
    LoadedImage

    Raises
    ------
    InputError
        The file is missing, unreadable or not an image, or has an unsupported pixel format.
    """
    path = Path(path)
    pixels = _read_pixels(path)
    original = (np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels) / np.float32(255.0)
    if config.channels == 1 and pixels.shape[2] == 3:
        pixels = (pixels @ _LUMA)[..., None]
    elif config.channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if config.size is not None and tuple(config.size) != pixels.shape[:2]:
        pixels = np.stack([_resize(pixels[..., c], config.size) for c in range(pixels.shape[2])], axis=-1)
    return LoadedImage(array=config.normalise(pixels), original=original.astype(np.float32), path=path)


def load_npy(path: str | Path, declared_shape: Sequence[int | str | None]) -> np.ndarray:
    """Read a ``.npy`` model input and check it against the declared input shape.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.npy`` file holding a real-valued array, with or without the batch axis.
    declared_shape : sequence
        The model input's declared shape (ints fixed; ``None``/str/<=0 dynamic). The batch
        axis is free even when declared fixed (methods and explain run such a model in
        chunks of its batch).

    Returns
    -------
    numpy.ndarray
        float32, with a batch axis.

    Raises
    ------
    InputError
        Missing/unreadable file, non-numeric or non-finite data, or a shape that does not fit.
    """
    path = Path(path)
    arr = read_npy(path)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path}: expected a real-valued numeric array, got dtype {getattr(arr, 'dtype', '?')}")
    shape = _dims(declared_shape) or []
    if arr.ndim == len(shape) - 1:
        arr = arr[None]
    if arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape[1:], arr.shape[1:])):
        raise InputError(f"{path}: array shape {arr.shape} does not fit the declared input shape {_show(shape)}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{path}: array contains NaN or infinite values")
    return arr


def resize_map(map2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize a 2-D map to ``size = (h, w)`` (e.g. back to the original image size).

    Parameters
    ----------
    map2d : numpy.ndarray
        2-D real array.
    size : tuple of int
        Target ``(height, width)``.

    Returns
    -------
    numpy.ndarray
        float32 (h, w).
    """
    map2d = np.asarray(map2d, dtype=np.float32)
    if map2d.ndim != 2:
        raise InputError(f"resize_map expects a 2-D map, got shape {map2d.shape}")
    if tuple(size) == map2d.shape:
        return map2d.copy()
    return _resize(map2d, size)


def _resize(channel: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Pillow bilinear resize of one float channel to (h, w)."""
    img = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(img.resize((int(size[1]), int(size[0])), Image.BILINEAR), dtype=np.float32)


def _read_pixels(path: Path) -> np.ndarray:
    """float32 (h, w, 1 or 3) pixel values in 0-255 from an image file."""
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return _to_pixels(ImageOps.exif_transpose(img), path)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read {path} as an image: {exc}") from None


def _to_pixels(img: Image.Image, path: Path) -> np.ndarray:
    """Convert any Pillow mode to float32 gray (h, w, 1) or RGB (h, w, 3) in 0-255."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(img, dtype=np.float32)
        if values.min() < 0 or values.max() > 65535:
            raise InputError(f"{path}: {mode} image with values outside 0-65535 is not supported")
        return (values / np.float32(257.0))[..., None]
    if mode == "F":
        raise InputError(f"{path}: floating-point images have no defined pixel range; pass a .npy input instead")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.float32)
    if mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.float32)[..., None]
    return np.asarray(img.convert("RGB"), dtype=np.float32)


def _parse(name: str, value: Any, origin: str) -> Any:
    """Parse one configuration value from its metadata string or Python form."""
    try:
        if name == "layout":
            return str(value).strip().upper()
        if name == "output":
            return str(value).strip().lower()
        if name == "scale":
            return float(value)
        if name == "channels":
            return int(value)
        if name == "size":
            items = value.split(",") if isinstance(value, str) else list(value)
            if len(items) != 2:
                raise ValueError("expected height,width")
            return (int(items[0]), int(items[1]))
        if name in ("mean", "std"):
            items = value.split(",") if isinstance(value, str) else list(np.atleast_1d(value))
            return tuple(float(v) for v in items)
        if name == "class_names":
            names = json.loads(value) if isinstance(value, str) else list(value)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError("expected a JSON list of strings")
            return tuple(names)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{origin}: cannot parse {value!r} as {name}: {exc}") from None
    raise TypeError(f"unknown preprocessing option {name!r}")


def _declared_shape(model: onnx.ModelProto) -> list[int | str | None] | None:
    """Declared shape of the first graph input that is not an initializer."""
    specs = declared_inputs(model)
    return list(specs[0].shape) if specs and specs[0].shape is not None else None


def _dims(shape: Sequence[int | str | None] | None) -> list[int | None] | None:
    """Normalise a declared shape: positive ints stay, everything else is dynamic (None)."""
    if shape is None:
        return None
    return [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape]


def _guess_layout(shape: list[int | None] | None) -> str:
    """NCHW if axis 1 is 1 or 3, else NHWC if the last axis is; NCHW when nothing tells."""
    if shape is None or len(shape) != 4:
        return "NCHW"
    if shape[1] in (1, 3):
        return "NCHW"
    return "NHWC" if shape[3] in (1, 3) else "NCHW"


def _show(shape: Sequence[int | None]) -> str:
    """Shape as text, with '?' for dynamic dims."""
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
