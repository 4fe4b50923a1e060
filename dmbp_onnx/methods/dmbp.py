"""Disentangled Masked Backpropagation (Ruiz, Agudo, Moreno-Noguer, ICCV 2021), batched.

One learnable mask per filter scales the gradient flowing back through that
filter; a positive and a negative set of masks are optimised per image so that
``A+ = W+ * x`` carries the evidence for the target and ``A- = W- * x`` the
evidence against it (dmbp-method.md). Both sets of every image of a chunk are
one batch of ``2 n`` (a model that declares a fixed batch runs the two sets as two
mappings of ``n``, sharing one forward pass: :class:`StackedMapping`): the forward
pass at ``x`` is recorded once (:class:`MaskedMapping`), and every iteration is two
linear passes (§4): one
masked backward pass giving W_m, and one adjoint forward pass of the frozen
network on ``d loss / d W_m`` giving the mask gradients. Weights never get
gradients, and no double backward is taken (PyTorch's conv double backward also
computes an unused weight gradient, which made it ~1.5x slower here).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Sequence

import torch
from tqdm import tqdm

from dmbp_onnx.errors import IneligibleModelError, InputError, UnsupportedModelError
from dmbp_onnx.methods.base import Attribution, Method, static_batch
from dmbp_onnx.methods.masked import MaskedMapping, StackedMapping
from dmbp_onnx.methods.objectives import (
    OBJECTIVES,
    BoxMasks,
    PlainStats,
    ThreeWayMasks,
    loss_per_image,
    magnitudes,
)
from dmbp_onnx.methods.target import Target, per_image_targets, resolve_targets

#: Activation memory of one optimisation per image, as a multiple of the tensors the
#: recorded forward saves: the retained forward, the differentiable backward and its adjoint.
MEMORY_FACTOR = 3.0
#: Largest automatic chunk on CPU: per-image time grew with the batch there (benchmarks/perf_dmbp.py:
#: VGG-style 96x96, one thread, ~0.09 s/iteration/image at batch 1, ~0.10 at 8, ~0.16 at 32).
CPU_CHUNK = 8


class DMBP(Method):
    """DMBP attribution.

    Parameters
    ----------
    twin : Twin
        A piecewise-linear model (else :class:`IneligibleModelError` at construction).
    iterations : int
        Adam steps per image; default 100 (the authors' demo uses 200, which measured no better
        on the demo benchmark at twice the cost: docs/method.md).
    lr : float
        Adam learning rate; a box mask moves by about ``lr`` per step.
    objective : {"r1", "r2", "threeway"}
        "r1" (default, best of the three on benchmarks/quality.py): evidence ``-(sum a+ - sum a-)/|f0|`` plus
        ``alpha`` times the wrong-sign ratios plus ``lam`` times the mean masks, masks box-projected
        onto [0, 1] from 1. "r2": ``beta`` times the relative reconstruction error of f0 plus purity
        plus a mass penalty relative to P0. "threeway": r1's loss on a per-filter softmax over
        (positive, negative, nuisance) (see :class:`ThreeWayMasks`).
    alpha : float
        Weight of the purity (wrong-sign ratio) terms; default 1 (0 and 3 measured the same).
    lam : float
        Mask-mass weight, relative to the explained score; default 5, chosen on the demo benchmark
        (docs/method.md): it sharpens the maps; 7 collapsed 1 of 200 maps, 10 collapsed more, and
        larger weights empty the negative map of more images.
    beta : float
        Weight of the reconstruction term of "r2"; default 10.
    device : str
        "auto" = CUDA when available, else CPU.
    batch_size : int, optional
        Images optimised together (each in both mask sets); by default as many as
        ``memory_budget_mb`` allows, estimated from one recorded forward pass (at most
        ``CPU_CHUNK`` = 8 on CPU, where larger batches were slower per image). A model
        that declares a fixed batch always uses it (each mask set then runs as that batch).
    memory_budget_mb : float
        Activation memory budget used to choose the chunk size.
    seed : int
        Seeds a forked torch RNG for the optimisation (the caller's RNG state is kept);
        the objectives draw no random numbers, so CPU results are deterministic.
    progress : bool
        Show a progress bar over the iterations.

    Notes
    -----
    The Attribution's ``extras`` hold ``w_pos``, ``w_neg`` (the mappings W+ and W-),
    ``nuisance`` (W - W+ - W-), ``gradient`` (W), ``masks_pos`` / ``masks_neg`` (site name
    -> ``(N, channels)``), ``loss_history`` ``(iterations, N)`` (the loss before each step),
    ``magnitudes`` (see :func:`~dmbp_onnx.methods.objectives.magnitudes`), ``device``,
    ``iterations``, ``objective`` and ``batch_size``.
    """

    name = "dmbp"

    def __init__(
        self,
        twin,
        iterations: int = 100,
        lr: float = 0.05,
        objective: str = "r1",
        alpha: float = 1.0,
        lam: float = 5.0,
        beta: float = 10.0,
        device: str = "auto",
        batch_size: int | None = None,
        memory_budget_mb: float = 2048.0,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(twin, device)
        if objective not in OBJECTIVES:
            raise InputError(f"unknown DMBP objective {objective!r}; choose one of {list(OBJECTIVES)}")
        _check(isinstance(iterations, Integral) and iterations >= 0, "iterations", iterations)
        _check(batch_size is None or isinstance(batch_size, Integral) and batch_size >= 1, "batch_size", batch_size)
        for label, value in (("lr", lr), ("alpha", alpha), ("lam", lam), ("beta", beta)):
            _check(isinstance(value, Real) and value >= 0, label, value)
        _check(isinstance(memory_budget_mb, Real) and memory_budget_mb > 0, "memory_budget_mb", memory_budget_mb)
        from dmbp_onnx.graph.inspect import offending_nodes

        graph = twin.clean_graph.graph
        offending = offending_nodes(graph, [graph.outputs[0].name])
        if offending:
            raise IneligibleModelError(offending)
        if not twin.mask_sites:
            raise UnsupportedModelError("DMBP needs at least one Conv or hidden fully-connected layer to mask")
        self.iterations, self.lr, self.objective = int(iterations), float(lr), objective
        self.alpha, self.lam, self.beta = float(alpha), float(lam), float(beta)
        self.batch_size, self.memory_budget_mb = batch_size, float(memory_budget_mb)
        self.seed, self.progress = int(seed), bool(progress)
        self.parametrisation = ThreeWayMasks() if objective == "threeway" else BoxMasks()
        self.options.update(
            iterations=self.iterations, lr=self.lr, objective=objective, alpha=self.alpha, lam=self.lam,
            beta=self.beta, batch_size=batch_size, memory_budget_mb=self.memory_budget_mb, seed=self.seed,
        )  # fmt: skip
        nodes = {node.name: node.op for node in graph.nodes}
        self._ops = {sub: nodes.get(onnx_name, "") for sub, onnx_name in twin.node_names.items()}

    def pixels(self, a: torch.Tensor) -> torch.Tensor:
        """``(N, P)``: an input-shaped map summed over the input channel axis, flattened."""
        axis = self.twin.channel_axis
        return (a.sum(axis) if axis is not None else a).flatten(1)

    def chunk_size(self, x: torch.Tensor) -> int:
        """Images per optimisation: ``batch_size``, or what ``memory_budget_mb`` allows."""
        if self.batch_size is not None:
            return int(self.batch_size)
        saved = [0]

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved[0] += t.numel() * t.element_size()
            return t

        probe = torch.cat([x[:1], x[:1]]).to(self.device).requires_grad_(True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            self.run(probe)
        per_image = max(1.0, saved[0] * MEMORY_FACTOR)
        size = max(1, min(x.shape[0], int(self.memory_budget_mb * 2**20 // per_image)))
        return min(size, CPU_CHUNK) if self.device.type == "cpu" else size

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        n = x.shape[0]
        listed = per_image_targets(target, n)
        size = static_batch(self.twin) or self.chunk_size(x)  # validate_input saw n == a fixed batch
        parts = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for start in range(0, n, size):
                chunk_target = listed[start : start + size] if listed is not None else target
                parts.append(self._optimise(x[start : start + size], chunk_target))
        return _merge(parts, self, size)

    def _optimise(self, x: torch.Tensor, target: Target | Sequence[Target] | None) -> dict:
        n = x.shape[0]
        xd = x.to(self.device)
        xx = torch.cat([xd, xd])
        resolved: list = []
        mapping = self._mapping(xd, xx, target, resolved)
        score = (mapping.output[:n] * mapping.grad_outputs[:n]).flatten(1).sum(1)
        w = mapping(None)[:n]
        stats = PlainStats.of(w * xd, self.pixels(w * xd))
        theta = self.parametrisation.init(n, mapping.channels, self.device)
        optimiser = torch.optim.Adam(list(theta.values()), lr=self.lr)
        history = []
        for _ in tqdm(range(self.iterations), disable=not self.progress, desc="DMBP", leave=False):
            loss = self._step(mapping, theta, stats, xx, n)
            optimiser.step()
            self.parametrisation.project(theta)
            history.append(loss)
        with torch.no_grad():
            masks = {k: m.detach() for k, m in self.parametrisation.masks(theta).items()}
        wm = mapping({k: m.reshape(2 * n, -1) for k, m in masks.items()})
        w_pos, w_neg = wm[:n], wm[n:]
        a = self.pixels(wm * xx)
        return {
            "targets": resolved,
            "score": score,
            "w": w,
            "w_pos": w_pos,
            "w_neg": w_neg,
            "x": xd,
            "masks": masks,
            "history": torch.stack(history) if history else torch.zeros(0, n, device=xd.device),
            "magnitudes": magnitudes(w, w_pos, w_neg, xd, a[:n], a[n:], masks, stats),
        }

    def _mapping(
        self, xd: torch.Tensor, xx: torch.Tensor, target, resolved: list
    ) -> MaskedMapping | StackedMapping:
        """W_m of both mask sets of ``xd``'s ``n`` images, as one mapping of batch ``2 n`` (positive set
        first); the resolved targets are appended to ``resolved``.

        A model that declares a fixed batch cannot run ``xx``: each set then has a mapping of its own at
        batch ``n``, both sharing one recorded forward pass (:class:`StackedMapping`).
        """
        n = xd.shape[0]
        if static_batch(self.twin) is None:

            def selector(out: torch.Tensor) -> torch.Tensor:
                targets, sel = resolve_targets(out[:n], target)
                resolved.extend(targets)
                return torch.cat([sel, sel])

            return MaskedMapping(self.module, xx, selector, self._ops)

        def selector_once(out: torch.Tensor) -> torch.Tensor:
            targets, sel = resolve_targets(out, target)
            resolved.extend(targets)
            return sel

        positive = MaskedMapping(self.module, xd, selector_once, self._ops)
        return StackedMapping([positive, positive.fork()])

    def _step(
        self, mapping: MaskedMapping | StackedMapping, theta: dict, stats: PlainStats, xx: torch.Tensor, n: int
    ) -> torch.Tensor:
        """Set ``theta``'s gradients for one iteration; return the loss per image (before the step).

        W_m comes from one masked backward pass; ``G = d loss / d W_m`` from autograd on
        the (cheap) loss alone; ``d loss / d m`` from one adjoint forward pass on G
        (:meth:`MaskedMapping.mask_gradients`) plus the loss's direct dependence on m.
        """
        with torch.enable_grad():
            masks = self.parametrisation.masks(theta)
            flat = {k: m.detach().reshape(2 * n, -1) for k, m in masks.items()}
            wm = mapping(flat).requires_grad_(True)
            leaves = {k: m.detach().requires_grad_(True) for k, m in masks.items()}
            a = self.pixels(wm * xx)
            loss = loss_per_image(self.objective, a[:n], a[n:], leaves, stats, self.alpha, self.lam, self.beta)
            grads = torch.autograd.grad(loss.sum(), [wm, *leaves.values()], allow_unused=True)
            through = mapping.mask_gradients(grads[0], flat)
            total = [
                through[k].reshape(m.shape) + (g if g is not None else 0.0)
                for (k, m), g in zip(masks.items(), grads[1:])
            ]
            if not self.parametrisation.identity:
                total = torch.autograd.grad(list(masks.values()), list(theta.values()), total)
            for t, g in zip(theta.values(), total):
                t.grad = g
        return loss.detach()


def _check(ok: bool, label: str, value) -> None:
    if not ok:
        raise InputError(f"invalid DMBP option {label}={value!r}")


def _merge(parts: list[dict], method: DMBP, size: int) -> Attribution:
    """Concatenate the chunks' results into one CPU :class:`Attribution`."""

    def cat(key: str, dim: int = 0) -> torch.Tensor:
        return torch.cat([p[key].detach().cpu() for p in parts], dim=dim)

    x, w, w_pos, w_neg = cat("x"), cat("w"), cat("w_pos"), cat("w_neg")
    positive, negative = w_pos * x, w_neg * x
    sites = list(parts[0]["masks"])
    masks = {k: torch.cat([p["masks"][k].detach().cpu() for p in parts], dim=1) for k in sites}
    mags = {k: torch.cat([p["magnitudes"][k].detach().cpu() for p in parts]) for k in parts[0]["magnitudes"]}
    return Attribution(
        method=method.name,
        signed=positive + negative,
        positive=positive,
        negative=negative,
        target=[t for p in parts for t in p["targets"]],
        score=cat("score"),
        explains=method.explains,
        extras={
            "w_pos": w_pos,
            "w_neg": w_neg,
            "nuisance": w - w_pos - w_neg,
            "gradient": w,
            "masks_pos": {k: m[0] for k, m in masks.items()},
            "masks_neg": {k: m[1] for k, m in masks.items()},
            "loss_history": cat("history", dim=1),
            "magnitudes": mags,
            "device": str(method.device),
            "iterations": method.iterations,
            "objective": method.objective,
            "batch_size": size,
        },
        channel_axis=method.twin.channel_axis,
    )
