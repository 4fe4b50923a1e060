"""Disentangled Masked Backpropagation (Ruiz, Agudo, Moreno-Noguer, ICCV 2021), batched.

One learnable mask per filter scales the gradient flowing back through that
filter; a positive and a negative set of masks are optimised per image so that
``A+ = W+ * x`` carries the evidence for the target and ``A- = W- * x`` the
evidence against it (docs/method.md). The mapping is taken at ``path_steps``
points of the path from 0 to x and averaged (masks shared by the points; with the
masks at 1 it is Integrated Gradients' mapping). The forward pass at each point is
recorded once (:class:`MaskedMapping`) and shared by both sets (a fork), all of them
presented as one mapping (:class:`StackedMapping`); every iteration is two linear
passes: one masked backward pass giving W_m, and one adjoint forward pass of the
frozen network on ``d loss / d W_m`` giving the mask gradients. Weights never get
gradients, and no double backward is taken (PyTorch's conv double backward also
computes an unused weight gradient, which made it ~1.5x slower here).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from dmbp_onnx.errors import IneligibleModelError, InputError, UnsupportedModelError
from dmbp_onnx.methods.base import Attribution, Method, side_by_side, static_batch
from dmbp_onnx.methods.masked import MaskedMapping, StackedMapping
from dmbp_onnx.methods.masked.lrp import LRP_GAMMA
from dmbp_onnx.methods.dmbp.iterates import Best, Settling, alive_maps, back_off
from dmbp_onnx.methods.dmbp.optimiser import Adam
from dmbp_onnx.methods.dmbp.objectives import (
    OBJECTIVES,
    SEPARABLE,
    BoxMasks,
    PlainStats,
    ThreeWayMasks,
    loss_per_image,
    loss_per_set,
    magnitudes,
)
from dmbp_onnx.methods.target import Target, per_image_targets, resolve_targets

#: Activation memory of one optimisation per image, as a multiple of the tensors the
#: recorded forward saves: the retained forward, the differentiable backward and its adjoint.
MEMORY_FACTOR = 3.0
#: Default activation memory budget on the CPU, in MB (on CUDA: half the device's free memory).
CPU_BUDGET_MB = 2048.0
#: Largest automatic chunk on CPU: per-image time grew with the batch there (benchmarks/perf_dmbp.py:
#: VGG-style 96x96, one thread, ~0.09 s/iteration/image at batch 1, ~0.10 at 8, ~0.16 at 32).
CPU_CHUNK = 8
#: ``lr="auto"``: one step may shrink a product of masks along ``AUTO_DEPTH`` sites by ``AUTO_STEP``
#: per site (the demo model's depth and the step chosen on it), i.e. by ``(1 - AUTO_STEP) ** AUTO_DEPTH``.
AUTO_STEP, AUTO_DEPTH = 0.25, 5


def auto_lr(depth: int) -> float:
    """The learning rate of ``lr="auto"`` for a model with ``depth`` mask sites:
    ``1 - (1 - AUTO_STEP) ** (AUTO_DEPTH / depth)`` (0.25 at depth 5, 0.086 at 16, 0.052 at 27)."""
    return 1.0 - (1.0 - AUTO_STEP) ** (AUTO_DEPTH / max(1, depth))


#: ``precision`` option -> dtype of the two linear passes (masks, loss and the forward pass stay fp32).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: ``rule`` option -> the masked mapping's composite (None: the plain gradient's rules).
RULES = {"lrp-gamma": LRP_GAMMA, "gradient": None}  # keys: dmbp_onnx.options.DMBP_RULES
#: ``rule`` option -> the default ``path_steps``: the path is Integrated Gradients' device, which makes the
#: integrated *gradient* complete along the path; LRP's rules are not a gradient (docs/method.md §6.8).
PATH_STEPS = {"lrp-gamma": 1, "gradient": 2}
#: ``rule`` option -> the default ``regions``: per-filter masks (1) are the paper's; under the LRP rule a
#: 4 x 4 grid of cells per conv site was as good or better on every model (docs/method.md §6.9).
REGIONS = {"lrp-gamma": 4, "gradient": 1}


class DMBP(Method):
    """DMBP attribution.

    Parameters
    ----------
    twin : Twin
        A piecewise-linear model (else :class:`IneligibleModelError` at construction).
    iterations : int
        Adam steps per image; default 3. On the demo benchmark 3 steps at lr 0.25 matched or beat 5,
        8, 16 and 100 (docs/method.md §6): Adam's first steps move every mask by about ``lr`` in the
        direction of its gradient's sign, which already makes the selection; more steps mostly trade
        faithfulness for sparser maps. The paper's authors use 200.
    lr : float or "auto"
        Adam learning rate; a box mask moves by about ``lr`` per step. "auto" (default) scales it
        with the depth D (mask sites): :func:`auto_lr`, 0.25 on the 5-site demo model where it was
        chosen, so that one step can shrink a mapping along the deepest path by the same factor on
        every model (masks compound multiplicatively along the depth: 0.25 per step collapsed
        every map of the 27-site CRAFT after one step).
    objective : {"perset", "r1", "r2", "threeway"}
        "perset" (default): each set's evidence relative to its own mass in the plain map,
        ``-sum a+ / P0 + sum a- / N0``, plus ``alpha`` times the wrong-sign ratios plus ``lam`` /
        ``lam_neg`` times each set's mean mask. "r1" (the earlier default, a reading of the paper):
        evidence ``-(sum a+ - sum a-)/|f0|`` with the same purity and mass terms. "r2": ``beta`` times
        the relative reconstruction error of f0 plus purity plus a mass penalty relative to P0.
        "threeway": r1's loss on a per-filter softmax over (positive, negative, nuisance)
        (see :class:`ThreeWayMasks`). Masks are box-projected onto [0, 1] from 1 (except threeway).
    alpha : float
        Weight of the purity (wrong-sign ratio) terms; default 1.
    lam : float
        Mask-mass weight of the positive set (and of both sets unless ``lam_neg`` is given);
        default 0. Relative to the evidence term's units (|f0| for r1, P0 and N0 for perset).
    lam_neg : float, optional
        Mask-mass weight of the negative set; default ``lam``.
    beta : float
        Weight of the reconstruction term of "r2"; default 10.
    path_steps : int, optional
        K, the points ``(k + 1/2) / K * x`` at which the masked mapping is taken and averaged (the
        masks are shared by the K points), as Integrated Gradients averages the gradient along the
        path from 0 to x. 1 is the paper's mapping at x alone. Default: per ``rule``
        (:data:`PATH_STEPS`): 1 for "lrp-gamma" (the path lowered faithfulness on the real VGG16 and
        tied on CRAFT, docs/method.md §6.8), 2 for "gradient" (with the gradient rule and no
        iteration, W+ and W- are then the midpoint-rule IG mapping). Each iteration costs K times as much.
    map_path_steps : int, optional
        Points of the path on which the returned maps are taken with the learned masks (default:
        ``path_steps``, the points the masks were learned on). Learning on a coarse path and
        mapping on a fine one costs ``map_path_steps`` masked backward passes once, not per
        iteration; with no iteration the maps are the midpoint-rule IG mapping on that many points.
    negative : bool
        Learn the negative mask set (default). False is the positive-only mode: one mask set, half
        the cost per iteration. With a per-set objective ("perset", "r1": the loss is a sum of per-set
        terms) the positive masks follow the same steps as when both sets are learned; the returned
        iterate is the best by the positive set's terms alone. The negative map is empty (zeros).
    rule : {"lrp-gamma", "gradient"}
        The backward mapping the masks act on. "lrp-gamma" (default): LRP's Gamma rule (gamma 0.25)
        on every convolution whose input is non-negative, on the LRP-canonical copy of the twin
        (:mod:`dmbp_onnx.methods.masked.lrp`); with masks at 1 and ``path_steps`` 1 the maps are
        zennit's LRP (Epsilon on the first layer and dense layers, Gamma on the other convolutions).
        It beat "gradient" on every model of the quality benchmark (docs/method.md §6) and puts
        more of the negative map on known negative evidence. The invariants of the paper's mapping
        (masks at 1 = the plain gradient; ``sum(W_m * x) = L_m(x)``) hold only for "gradient": the
        input gradient, DMBP's own mapping (paper-faithful; LRP's rules are not a gradient).
    negative_rule : {"lrp-gamma", "gradient"}, optional
        The negative set's mapping, when it differs from the positive set's (default: ``rule``); the
        negative evidence term is then relative to N0 of the negative set's own unmasked mapping.
    tol : float
        Early stop: a chunk stops once no image's loss improved on its best by more than ``tol``
        (relative) for ``PATIENCE`` (3) steps; 0 (default) runs every iteration.
    precision : {"fp32", "bf16", "fp16"}
        Precision of the two linear passes of each iteration (the forward pass, gates, masks and
        loss stay fp32). "bf16" was about twice as fast on an AVX512-BF16 CPU with maps Spearman
        >= 0.999 to fp32's; default "fp32".
    regions : int, optional
        ``g``: masks per filter *and* per cell of a ``g x g`` grid over each conv site's spatial axes
        (:mod:`dmbp_onnx.methods.masked.regions`), where per-filter masks are too coarse to separate
        evidence that one filter carries in two places; sites without two spatial axes keep one mask per
        filter. ``extras["masks_pos"]`` / ``["masks_neg"]`` are then ``(N, channels * cells)``, filter-major.
        Default: per ``rule`` (:data:`REGIONS`): 4 for "lrp-gamma" (docs/method.md §6.9), 1 (per filter,
        the paper's) for "gradient".
    device : str
        "auto" = CUDA when available, else CPU.
    batch_size : int, optional
        Images optimised together (each in both mask sets); by default as many as
        ``memory_budget_mb`` allows, estimated from one recorded forward pass (at most
        ``CPU_CHUNK`` = 8 on CPU, where larger batches were slower per image). A model
        that declares a fixed batch always uses it (each mask set then runs as that batch).
    memory_budget_mb : float, optional
        Activation memory budget used to choose the chunk size (default: ``CPU_BUDGET_MB`` = 2048
        on the CPU; on a CUDA device, half of its free memory when the call starts).
    seed : int
        Seeds a forked torch RNG for the optimisation (the caller's RNG state is kept);
        the objectives draw no random numbers, so CPU results are deterministic.
    progress : bool
        Show a progress bar over the iterations.

    Notes
    -----
    The Attribution's ``extras`` hold ``w_pos``, ``w_neg`` (the mappings W+ and W-),
    ``nuisance`` (W - W+ - W-), ``gradient`` (W, the unmasked mapping: the path-averaged
    gradient when ``path_steps`` > 1), ``masks_pos`` / ``masks_neg`` (site name
    -> ``(N, channels)``), ``loss_history`` ``(iterations, N)`` (the loss before each step),
    ``magnitudes`` (see :func:`~dmbp_onnx.methods.dmbp.objectives.magnitudes`, plus ``iterations``: the last
    step that improved each image's loss, and ``best_iterate``: the step whose masks were returned), ``device``,
    ``iterations``, ``objective`` and ``batch_size``.
    """

    name = "dmbp"

    def __init__(
        self,
        twin,
        iterations: int = 3,
        lr: float | str = "auto",
        objective: str = "perset",
        alpha: float = 1.0,
        lam: float = 0.0,
        lam_neg: float | None = None,
        beta: float = 10.0,
        path_steps: int | None = None,
        map_path_steps: int | None = None,
        negative: bool = True,
        rule: str = "lrp-gamma",
        negative_rule: str | None = None,
        tol: float = 0.0,
        precision: str = "fp32",
        regions: int | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        memory_budget_mb: float | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(twin, device)
        if objective not in OBJECTIVES:
            raise InputError(f"unknown DMBP objective {objective!r}; choose one of {list(OBJECTIVES)}")
        _check(isinstance(iterations, Integral) and iterations >= 0, "iterations", iterations)
        _check(batch_size is None or isinstance(batch_size, Integral) and batch_size >= 1, "batch_size", batch_size)
        _check(precision in PRECISIONS, "precision", precision)
        _check(rule in RULES, "rule", rule)
        regions = REGIONS[rule] if regions is None else regions
        _check(isinstance(regions, Integral) and regions >= 1, "regions", regions)
        path_steps = PATH_STEPS[rule] if path_steps is None else path_steps
        _check(isinstance(path_steps, Integral) and path_steps >= 1, "path_steps", path_steps)
        map_path_steps = path_steps if map_path_steps is None else map_path_steps
        _check(isinstance(map_path_steps, Integral) and map_path_steps >= 1, "map_path_steps", map_path_steps)
        negative_rule = rule if negative_rule is None else negative_rule
        _check(negative_rule in RULES, "negative_rule", negative_rule)
        lam_neg = lam if lam_neg is None else lam_neg
        if not negative and objective not in SEPARABLE:
            raise InputError(
                f"negative=False needs an objective whose loss is a sum of per-set terms {SEPARABLE}; "
                f"{objective!r} couples the sets"
            )
        if lr == "auto":
            lr = auto_lr(len(twin.mask_sites))
        for label, value in (("lr", lr), ("alpha", alpha), ("lam", lam), ("lam_neg", lam_neg), ("beta", beta), ("tol", tol)):
            _check(isinstance(value, Real) and value >= 0, label, value)
        _check(memory_budget_mb is None or (isinstance(memory_budget_mb, Real) and memory_budget_mb > 0),
               "memory_budget_mb", memory_budget_mb)  # fmt: skip
        from dmbp_onnx.graph.inspect import offending_nodes

        graph = twin.clean_graph.graph
        offending = offending_nodes(graph, [graph.outputs[0].name])
        if offending:
            raise IneligibleModelError(offending)
        if not twin.mask_sites:
            raise UnsupportedModelError("DMBP needs at least one Conv or hidden fully-connected layer to mask")
        self.iterations, self.lr, self.objective = int(iterations), float(lr), objective
        self.alpha, self.lam, self.lam_neg, self.beta = float(alpha), float(lam), float(lam_neg), float(beta)
        self.path_steps, self.tol, self.precision = int(path_steps), float(tol), precision
        self.map_path_steps, self.negative = int(map_path_steps), bool(negative)
        self.regions = int(regions)
        self.sets = 2 if self.negative else 1
        self.rule, self.negative_rule = rule, negative_rule
        self._rules = (RULES[rule], RULES[negative_rule])  # of the positive and the negative set
        self._masked_module: nn.Module | None = None
        self.batch_size = batch_size
        self.memory_budget_mb = None if memory_budget_mb is None else float(memory_budget_mb)
        self.seed, self.progress = int(seed), bool(progress)
        self.parametrisation = ThreeWayMasks() if objective == "threeway" else BoxMasks()
        self._per_set = self.parametrisation.identity and objective in SEPARABLE
        self.options.update(
            iterations=self.iterations, lr=self.lr, objective=objective, alpha=self.alpha, lam=self.lam,
            lam_neg=self.lam_neg, beta=self.beta, path_steps=self.path_steps, map_path_steps=self.map_path_steps,
            negative=self.negative, rule=rule, negative_rule=negative_rule, tol=self.tol, precision=precision,
            regions=self.regions,
            batch_size=batch_size, memory_budget_mb=self.memory_budget_mb, seed=self.seed,
        )  # fmt: skip
        nodes = {node.name: node.op for node in graph.nodes}
        self._ops = {sub: nodes.get(onnx_name, "") for sub, onnx_name in twin.node_names.items()}

    def pixels(self, a: torch.Tensor) -> torch.Tensor:
        """``(N, P)``: an input-shaped map summed over the input channel axis, flattened."""
        axis = self.twin.channel_axis
        return (a.sum(axis) if axis is not None else a).flatten(1)

    def budget_bytes(self) -> float:
        """The activation memory budget: ``memory_budget_mb``, or the device's default (see the class)."""
        if self.memory_budget_mb is not None:
            return self.memory_budget_mb * 2**20
        if self.device.type == "cuda":
            return torch.cuda.mem_get_info(self.device)[0] / 2
        return CPU_BUDGET_MB * 2**20

    def chunk_size(self, x: torch.Tensor) -> int:
        """Images per optimisation: ``batch_size``, or what ``memory_budget_mb`` allows."""
        if self.batch_size is not None:
            return int(self.batch_size)
        if x.shape[0] == 1:
            return 1
        saved = [0]

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved[0] += t.numel() * t.element_size()
            return t

        probe = x[:1].to(self.device).requires_grad_(True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            self.run(probe)
        per_image = max(1.0, saved[0] * MEMORY_FACTOR * 2 * self.path_steps)
        size = max(1, min(x.shape[0], int(self.budget_bytes() // per_image)))
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

    def alphas(self, k: int | None = None) -> list[float]:
        """Scales of the input at which the mapping is taken with ``k`` points (default
        ``path_steps``): ``[1]`` for 1 (the paper's linearisation at x), else the midpoints
        ``(i + 1/2) / k`` of the path 0 -> x."""
        k = self.path_steps if k is None else k
        return [1.0] if k == 1 else [(i + 0.5) / k for i in range(k)]

    def _optimise(self, x: torch.Tensor, target: Target | Sequence[Target] | None) -> dict:
        n, k = x.shape[0], self.path_steps
        xd = x.to(self.device)
        with torch.no_grad():
            out = self.run(xd)
        targets, sel = resolve_targets(out, target)
        sel = sel.to(out.device)
        score = (out * sel).flatten(1).sum(1)
        mapping = self._mapping(xd, sel)
        w, stats, unmasked = self._plain(mapping.parts, xd, k)
        theta = self.parametrisation.init(n, mapping.channels, self.device, self.sets)
        optimiser = Adam(list(theta.values()), lr=self.lr)
        history: list[torch.Tensor] = []
        settled = Settling(n, self.tol, xd.device)
        best = Best(n)
        bar = tqdm(range(self.iterations), disable=not self.progress, desc="DMBP", leave=False)
        scale = torch.ones(1, n, 1, device=self.device)
        for step in bar:
            masks = {name: m.detach().clone() for name, m in self.parametrisation.masks(theta).items()}
            known = unmasked if step == 0 and self.parametrisation.identity else None  # masks start at 1
            loss, wm = self._step(mapping, theta, stats, xd, known)
            alive = self._alive(wm, xd, stats)
            best.update(step, loss, wm, masks, alive)
            history.append(loss.sum(0))
            if settled.update(history[-1]):
                break
            if self.parametrisation.identity and not bool(alive.all()):
                scale = back_off(theta, best, alive, scale)
            optimiser.step(scale)
            self.parametrisation.project(theta)
        else:  # the last step's masks have not been evaluated yet
            with torch.no_grad():
                masks = {name: m.detach() for name, m in self.parametrisation.masks(theta).items()}
                start = not history and self.parametrisation.identity  # 0 iterations: masks still 1
                wm = _mean_over_points(unmasked if start else mapping(_expand(masks, k)), k, self.sets)
                loss = self._loss(wm, xd, masks, stats)
            best.update(len(history), loss, wm, masks, self._alive(wm, xd, stats))
        wm, masks = best.w, best.masks
        if self.map_path_steps != k:
            w, wm, stats = self._map_on_path(xd, sel, masks)
        if not self.negative:  # positive-only: no negative set, an empty negative map
            wm = torch.cat([wm, torch.zeros_like(wm)])
            masks = {name: torch.cat([m, torch.zeros_like(m)]) for name, m in masks.items()}
        w_pos, w_neg = wm[:n], wm[n:]
        a = self.pixels(wm * torch.cat([xd, xd]))
        mags = magnitudes(w, w_pos, w_neg, xd, a[:n], a[n:], masks, stats)
        mags["iterations"] = settled.used()
        mags["best_iterate"] = best.step[0].to(torch.float32)  # of the positive set
        return {
            "targets": targets,
            "score": score,
            "w": w,
            "w_pos": w_pos,
            "w_neg": w_neg,
            "x": xd,
            "masks": masks,
            "history": torch.stack(history) if history else torch.zeros(0, n, device=xd.device),
            "magnitudes": mags,
        }

    def _mapping(self, xd: torch.Tensor, sel: torch.Tensor) -> StackedMapping:
        """W_m at every path point of ``xd``'s ``n`` images, for both mask sets: one mapping of batch
        ``2 K n`` ordered (set, path point, image), positive set first.

        Each path point is a mapping of its own at batch ``n`` (so a model that declares a fixed
        batch runs unchanged, and results do not depend on K through the kernels' batch size); the
        negative set's mappings are :meth:`MaskedMapping.fork` s of the positive's (same recorded
        forward pass, no second one).
        """
        return StackedMapping(self._sets_at(xd, self.alphas(), sel))

    def _sets_at(self, xd: torch.Tensor, alphas: Sequence[float], sel: torch.Tensor) -> list[MaskedMapping]:
        """The mappings at the path points ``alphas``, positive set first, then (unless positive-only)
        the negative set's: forks of the positive's (no second forward pass) when both sets have one
        rule, else recorded under the negative set's rule."""
        parts = [self._point(xd, a, sel, self._rules[0]) for a in alphas]
        if self.sets == 1:
            return parts
        if not self._own_negative_rule:
            return parts + [p.fork() for p in parts]
        return parts + [self._point(xd, a, sel, self._rules[1]) for a in alphas]

    def _point(self, xd: torch.Tensor, alpha: float, sel: torch.Tensor, rules) -> MaskedMapping:
        """The recorded forward pass at ``alpha * xd`` for the selector ``sel`` under ``rules``."""
        return MaskedMapping(
            self.masked_module(xd), xd if alpha == 1.0 else alpha * xd, lambda out: sel, self._ops,
            dtype=self._dtype(), rules=rules, regions=self.regions,
        )

    @property
    def _own_negative_rule(self) -> bool:
        """Whether the negative set is learned under a rule other than the positive set's."""
        return self.sets == 2 and self._rules[1] is not self._rules[0]

    def _stats(self, plain: torch.Tensor, xd: torch.Tensor) -> PlainStats:
        """The statistics that normalise the loss, from the unmasked mapping ``plain``: ``(n, ...)``, or
        ``(2 n, ...)`` with the negative set's own unmasked mapping after the positive's, whose
        negative mass N0 the negative set's evidence is then relative to."""
        n = xd.shape[0]
        stats = PlainStats.of(plain[:n] * xd, self.pixels(plain[:n] * xd))
        if len(plain) > n:
            stats.negative_mass = PlainStats.of(plain[n:] * xd, self.pixels(plain[n:] * xd)).negative_mass
        return stats

    def _plain(
        self, parts: Sequence[MaskedMapping], xd: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, PlainStats, torch.Tensor]:
        """The positive set's unmasked mapping W ``(n, ...)`` (the mean over its ``k`` path points), the
        statistics that normalise the loss (:meth:`_stats`) and every part's unmasked mapping
        ``(sets k n, ...)``, ordered as the parts: what the first iteration's pass would compute
        (masks start at 1), which it reuses instead.

        Each set with a rule of its own takes one unmasked pass per path point; a negative set that
        forks the positive's takes its results and its signals (:meth:`MaskedMapping.take_signals`)."""
        ran = (2 if self._own_negative_rule else 1) * k
        found = torch.cat([p(None) for p in parts[:ran]])
        for j in range(ran, len(parts)):
            parts[j].take_signals(parts[j - ran])
        plain = _mean_over_points(found, k, ran // k)
        unmasked = found if len(parts) == ran else torch.cat([found] * (len(parts) // ran))
        return plain[: xd.shape[0]], self._stats(plain, xd), unmasked

    @torch.no_grad()
    def _map_on_path(
        self, xd: torch.Tensor, sel: torch.Tensor, masks: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, PlainStats]:
        """The plain mapping ``(n, ...)``, both sets' masked mappings ``(2 n, ...)`` for the learned
        ``masks`` and the plain statistics, averaged over the ``map_path_steps`` points of the path
        (one point at a time, so memory does not grow with the number of points)."""
        flat = _expand(masks, 1)
        sets = 2 if self._own_negative_rule else 1
        total = None
        for a in self.alphas(self.map_path_steps):
            parts = self._sets_at(xd, [a], sel)
            found = (torch.cat([p(None) for p in parts[:sets]]), StackedMapping(parts)(flat))
            total = found if total is None else (total[0] + found[0], total[1] + found[1])
        plain, wm = (t / self.map_path_steps for t in total)
        return plain[: xd.shape[0]], wm, self._stats(plain, xd)

    def _loss(
        self, wm: torch.Tensor, xd: torch.Tensor, masks: dict[str, torch.Tensor], stats: PlainStats
    ) -> torch.Tensor:
        """The loss of the mappings ``wm`` ``(sets n, ...)`` and their masks (site -> ``(sets, n, C)``):
        ``(sets, n)``, each set's terms, where the objective is a sum of per-set terms and the masks
        are the parameters (each set then keeps its own best iterate), else ``(1, n)``; in
        positive-only mode the negative set's terms are those of an empty map (0) and left out."""
        n = xd.shape[0]
        a = self.pixels(wm * torch.cat([xd] * self.sets))
        a_neg = a[n:] if self.negative else torch.zeros_like(a)
        if self._per_set:
            terms = loss_per_set(self.objective, a[:n], a_neg, masks, stats, self.alpha, self.lam, self.lam_neg)
            return terms[: self.sets]
        return loss_per_image(
            self.objective, a[:n], a_neg, masks, stats, self.alpha, self.lam, self.beta, self.lam_neg
        )[None]

    def _alive(self, wm: torch.Tensor, xd: torch.Tensor, stats: PlainStats) -> torch.Tensor:
        """Which maps of ``wm`` have not collapsed, in :meth:`_loss`'s shape (see :func:`alive_maps`)."""
        return alive_maps(wm, xd, stats, self.pixels if self._per_set else None)

    def masked_module(self, example: torch.Tensor) -> nn.Module:
        """The module the masked mappings walk: the twin's, or for an LRP rule its LRP-canonical copy
        (:func:`~dmbp_onnx.twin.canonical.canonicalize`, built once from the batch ``example``)."""
        if self._rules == (None, None):
            return self.module
        if self._masked_module is None:
            from dmbp_onnx.twin.canonical import canonicalize

            self._masked_module = canonicalize(self.twin, example.to(self.twin.device)).module.to(self.device)
        return self._masked_module

    def _dtype(self) -> torch.dtype | None:
        """Precision of the mapping's linear passes."""
        return PRECISIONS[self.precision]

    def _step(
        self, mapping: StackedMapping, theta: dict, stats: PlainStats, xd: torch.Tensor,
        known: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set ``theta``'s gradients for one iteration; return the loss (:meth:`_loss`'s shape, before the step)
        and the mappings it was computed on, ``(2 n, ...)`` (the path mean of each set).

        W_m comes from one masked backward pass (``known``: already computed, the unmasked mappings of
        :meth:`_plain` at the first iteration, whose masks are all 1); ``G = d loss / d W_m`` from autograd on
        the (cheap) loss alone; ``d loss / d m`` from one adjoint forward pass on G
        (:meth:`MaskedMapping.mask_gradients`) plus the loss's direct dependence on m.
        With a path (``path_steps`` K > 1) the masks are shared by the K points: each point's
        mask gradient is summed.
        """
        n, k = xd.shape[0], self.path_steps
        with torch.enable_grad():
            masks = self.parametrisation.masks(theta)
            flat = _expand({name: m.detach() for name, m in masks.items()}, k)
            wm = (mapping(flat) if known is None else known.detach().clone()).requires_grad_(True)
            leaves = {name: m.detach().requires_grad_(True) for name, m in masks.items()}
            mean = _mean_over_points(wm, k, self.sets)
            loss = self._loss(mean, xd, leaves, stats)
            grads = torch.autograd.grad(loss.sum(), [wm, *leaves.values()], allow_unused=True)
            through = mapping.mask_gradients(grads[0], flat)
            total = [
                through[name].unflatten(0, (self.sets, k, n)).sum(1) + (g if g is not None else 0.0)
                for (name, m), g in zip(masks.items(), grads[1:])
            ]
            if not self.parametrisation.identity:
                total = torch.autograd.grad(list(masks.values()), list(theta.values()), total)
            for t, g in zip(theta.values(), total):
                t.grad = g
        return loss.detach(), mean.detach()


def _expand(masks: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Masks ``(2, n, C)`` per site as ``(2 k n, C)`` rows ordered (set, path point, image)."""
    return {name: m.unsqueeze(1).expand(m.shape[0], k, *m.shape[1:]).reshape(-1, m.shape[-1]) for name, m in masks.items()}


def _mean_over_points(w: torch.Tensor, k: int, sets: int) -> torch.Tensor:
    """``(sets * n, ...)``: the mean over the ``k`` path points of ``w`` ``(sets * k * n, ...)``,
    whose rows are ordered (set, path point, image)."""
    return w if k == 1 else w.unflatten(0, (sets, k, -1)).mean(1).flatten(0, 1)


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
            "loss_history": side_by_side([p["history"].detach().cpu() for p in parts]),
            "magnitudes": mags,
            "device": str(method.device),
            "iterations": method.iterations,
            "objective": method.objective,
            "batch_size": size,
        },
        channel_axis=method.twin.channel_axis,
    )
