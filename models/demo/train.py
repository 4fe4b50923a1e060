"""Train the shipped demo ReLU CNN on the synthetic shapes dataset and export it to ONNX.

Rebuild (deterministic for a given thread count; 3 to 20 minutes on 2 CPU cores, depending on load)::

    python models/demo/train.py --out dmbp_onnx/data/demo.onnx

Writes the ONNX model (input ``image`` NCHW float32, output ``logits``, no softmax, dynamic
batch, preprocessing in ``metadata_props``), one test image + mask per class with
``samples.json`` next to it, and ``models/demo/MODEL_CARD.md`` with the measured numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes  # noqa: E402

WIDTHS = (8, 24, 48, 64, 96)
OPSET = 17


class ShapesNet(nn.Module):
    """Conv-BN-ReLU blocks with max pooling between stages, global average pooling, one Linear.

    Parameters
    ----------
    n_classes : int
        Number of output logits.
    widths : tuple of int
        Output channels of the 3x3 convolution stages.
    """

    def __init__(self, n_classes: int, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, n_classes) of a normalised NCHW batch."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def to_input(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images -> normalised float32 NCHW tensor."""
    x = (images.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int) -> None:
    """AdamW with a one-cycle schedule and random flips / 90-degree rotations (class-preserving)."""
    gen = torch.Generator().manual_seed(0)
    steps = epochs * (len(x) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total, t0 = 0.0, time.time()
        for b in range(len(x) // batch):
            idx = order[b * batch : (b + 1) * batch]
            xb = x[idx]
            k = int(torch.randint(4, (1,), generator=gen))
            xb = torch.rot90(xb, k, dims=(2, 3))
            if bool(torch.randint(2, (1,), generator=gen)):
                xb = torch.flip(xb, dims=(3,))
            loss = loss_fn(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        print(f"epoch {epoch + 1}/{epochs}: loss {total / (len(x) // batch):.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()


def export(model: nn.Module, out: Path, meta: dict[str, str]) -> onnx.ModelProto:
    """Export with the legacy exporter (opset 17, dynamic batch) and attach ``metadata_props``."""
    dummy = torch.zeros(1, 3, shapes.SIZE, shapes.SIZE)
    torch.onnx.export(
        model, (dummy,), str(out), dynamo=False, opset_version=OPSET,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    proto = onnx.load(str(out))
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return proto


def ort_accuracy(path: Path, x: torch.Tensor, y: np.ndarray) -> float:
    """Top-1 accuracy of the exported model under onnxruntime."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"image": x.numpy()})[0]
    return float((logits.argmax(1) == y).mean())


def write_samples(data_dir: Path, images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Save the first test image of each class (no selection by prediction) + mask + samples.json."""
    entries = []
    for label, name in enumerate(shapes.CLASS_NAMES):
        i = int(np.flatnonzero(labels == label)[0])
        Image.fromarray(images[i]).save(data_dir / f"sample_{name}.png")
        Image.fromarray(masks[i].astype(np.uint8) * 255).save(data_dir / f"sample_{name}_mask.png")
        entries.append({"image": f"sample_{name}.png", "mask": f"sample_{name}_mask.png",
                        "class": name, "label": label, "test_index": i})
    (data_dir / "samples.json").write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dmbp_onnx/data/demo.onnx"))
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--card", type=Path, default=Path(__file__).resolve().parent / "MODEL_CARD.md")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    tr_img, _, tr_lab = shapes.train_split(args.n_train)
    te_img, te_mask, te_lab = shapes.test_split(args.n_test)
    pix = tr_img.reshape(-1, 3).astype(np.float64) / 255.0
    mean = np.round(pix.mean(0), 4).astype(np.float32)
    std = np.round(pix.std(0), 4).astype(np.float32)
    print(f"data: {args.n_train} train, {args.n_test} test, mean {mean}, std {std}", flush=True)

    model = ShapesNet(len(shapes.CLASS_NAMES))
    t_train = time.time()
    train(model, to_input(tr_img, mean, std), torch.from_numpy(tr_lab), args.epochs, args.batch)
    train_s = time.time() - t_train

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "dmbp.layout": "NCHW",
        "dmbp.size": f"{shapes.SIZE},{shapes.SIZE}",
        "dmbp.scale": "255",
        "dmbp.mean": ",".join(f"{v:.4f}" for v in mean),
        "dmbp.std": ",".join(f"{v:.4f}" for v in std),
        "dmbp.class_names": json.dumps(list(shapes.CLASS_NAMES)),
        "dmbp.output": "logits",
    }
    export(model, args.out, meta)
    acc = ort_accuracy(args.out, to_input(te_img, mean, std), te_lab)
    acc256 = ort_accuracy(args.out, to_input(te_img[:256], mean, std), te_lab[:256])
    samples = write_samples(args.out.parent, te_img, te_mask, te_lab)
    n_params = sum(p.numel() for p in model.parameters())
    ops = Counter(n.op_type for n in onnx.load(str(args.out)).graph.node)
    total_s = time.time() - t_start
    size_kb = args.out.stat().st_size / 1024
    print(f"held-out accuracy {acc:.4f} ({args.n_test}), {acc256:.4f} ({min(256, args.n_test)}); "
          f"train {train_s:.0f} s, total {total_s:.0f} s; {size_kb:.0f} KiB; {n_params} params", flush=True)
    args.card.write_text(_card(meta, acc, acc256, args, train_s, total_s, size_kb, n_params, samples, ops))


def _card(meta: dict[str, str], acc: float, acc256: float, args: argparse.Namespace, train_s: float,
          total_s: float, size_kb: float, n_params: int, samples: list[dict], ops: Counter) -> str:
    """The model card text, with every number measured by this run."""
    blocks = " -> MaxPool2d(2) -> ".join(f"[Conv3x3({w}, no bias) -> BN -> ReLU]" for w in WIDTHS)
    sample_list = ", ".join(f"`{s['image']}` (test #{s['test_index']})" for s in samples)
    return f"""# Demo model: `dmbp_onnx/data/demo.onnx`

A small ReLU CNN that classifies which of {len(shapes.CLASS_NAMES)} shapes is in a {shapes.SIZE}x{shapes.SIZE}
RGB image. Each image of the synthetic dataset (`models/demo/shapes.py`) holds exactly one shape on a
textured or noisy background, and comes with its ground-truth mask, so attribution maps can be scored.

## Classes
{", ".join(f"{i} = {n}" for i, n in enumerate(shapes.CLASS_NAMES))}

## Input and preprocessing (also in the ONNX `metadata_props`)
| key | value |
|---|---|
{chr(10).join(f"| `{k}` | `{v}` |" for k, v in meta.items())}

Input `image`: float32 `(batch, 3, {shapes.SIZE}, {shapes.SIZE})`, RGB, `x = (pixel / 255 - mean) / std`.
Output `logits`: float32 `(batch, {len(shapes.CLASS_NAMES)})`, no softmax in the graph.

## Architecture ({n_params} parameters, {size_kb:.0f} KiB ONNX, opset {OPSET}, legacy TorchScript exporter)
{blocks} -> GlobalAvgPool -> Linear({WIDTHS[-1]} -> {len(shapes.CLASS_NAMES)}).
Only ReLU nonlinearities (piecewise linear). BatchNorm is exported in eval mode; ONNX graph ops:
{", ".join(f"{op} x{k}" for op, k in sorted(ops.items()))}.

## Training
{args.n_train} training images (seed {shapes.TRAIN_SEED}), {args.epochs} epochs, batch {args.batch}, AdamW
(lr 3e-3 one-cycle, 20 % warm-up, weight decay 1e-4), random 90-degree rotations and horizontal flips (class-preserving),
`torch.manual_seed(0)`, `torch.use_deterministic_algorithms(True)`, {args.threads} CPU threads.

## Measured (by the run that produced the shipped file)
* Held-out accuracy (onnxruntime, test split seed {shapes.TEST_SEED}): **{acc:.2%}** on {args.n_test} images,
  {acc256:.2%} on `test_split(256)`.
* Training time: {train_s:.0f} s ({total_s:.0f} s end to end incl. data generation and export) on
  {args.threads} shared CPU threads.

## Samples shipped in `dmbp_onnx/data/`
The first test image of each class, not selected by prediction: {sample_list}; each with a `_mask.png`
(white = shape) and listed in `samples.json`.

## Rebuild
```
python models/demo/train.py --out dmbp_onnx/data/demo.onnx
```
"""


if __name__ == "__main__":
    main()
