"""Where a job's images come from: folders, globs and manifests, streamed one path at a time.

A manifest is a ``.txt`` file (one image path a line; blank lines and ``#`` comments skipped)
or a ``.csv`` file with a header naming an ``image`` (or ``path``) column and optionally a
``target`` column (a class index or name; empty = the job's ``--target``). Relative paths in a
manifest are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from dmbp_onnx.errors import InputError

MANIFEST_SUFFIXES = (".txt", ".csv")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One image to explain.

    Attributes
    ----------
    path : str
        The image file.
    target : str or None
        This image's target (index or class name) from a manifest; ``None`` = the job's target.
    """

    path: str
    target: str | None = None


def is_glob(spec: str) -> bool:
    """Whether ``spec`` is a glob pattern rather than a path."""
    return bool(_GLOB_CHARS & set(spec)) and not Path(spec).exists()


def is_manifest(spec: str) -> bool:
    """Whether ``spec`` names a manifest file (``.txt`` or ``.csv``)."""
    return Path(spec).suffix.lower() in MANIFEST_SUFFIXES and Path(spec).is_file()


def _folder(path: Path) -> Iterator[Source]:
    from dmbp_onnx.explain.inputs import IMAGE_SUFFIXES

    names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not names:
        raise InputError(f"folder '{path}' contains no image files ({', '.join(IMAGE_SUFFIXES)})")
    for name in names:
        yield Source(str(path / name))


def _pattern(spec: str) -> Iterator[Source]:
    matched = False
    for name in sorted(glob.iglob(spec, recursive=True)):
        if Path(name).is_file():
            matched = True
            yield Source(name)
    if not matched:
        raise InputError(f"the pattern '{spec}' matches no files")


def _manifest(path: Path) -> Iterator[Source]:
    base = path.parent
    with open(path, encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".txt":
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield Source(str(base / line))
            return
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        column = next((c for c in ("image", "path") if c in fields), None)
        if column is None:
            raise InputError(f"manifest '{path}' has no 'image' or 'path' column (header: {fields})")
        for row in reader:
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            if row[column]:
                yield Source(str(base / row[column]), row.get("target") or None)


def iter_sources(specs: Sequence[str | Path]) -> Iterator[Source]:
    """Every image named by ``specs`` (files, folders, globs, manifests), in order, lazily.

    Raises
    ------
    InputError
        A path that does not exist, an empty folder or pattern, a CSV manifest without an image column.
    """
    for spec in specs:
        spec = str(spec)
        path = Path(spec)
        if path.is_dir():
            yield from _folder(path)
        elif is_manifest(spec):
            yield from _manifest(path)
        elif path.exists():
            yield Source(spec)
        elif is_glob(spec):
            yield from _pattern(spec)
        else:
            raise InputError(f"image '{spec}' does not exist")


def count_sources(specs: Sequence[str | Path]) -> int:
    """How many images :func:`iter_sources` yields (one pass over the names, none kept)."""
    return sum(1 for _ in iter_sources(specs))
