"""Singularity analysis of a trained CNN: per-layer weight sparsity (Hoyer's l2/l1 measure),
near-zero weights, eliminated channels and dead ReLU units — the measurements behind Figure 4
and "Efficacy of Mitigating Elimination Singularities" of Sun et al., *Beyond Skip Connection:
Pooling and Unpooling Design for Elimination Singularities*, AAAI 2025.

Three ways in, one code path (:func:`analyze`):

* ``train_eval`` with ``params.analyze = ["singularity"]`` analyses the model it has just
  trained and adds the metrics, series and artifacts below to the run (so a claim's
  accuracy and its mechanism come from the same trained nets);
* the task ``singularity`` (:func:`run`) analyses a registry model — freshly initialised, or
  loaded from ``params.checkpoint`` — optionally beside a second one
  (``params.compare_model`` / ``compare_checkpoint``) for a plain-vs-Pool-Skip figure;
* ``python -m suite analyze singularity --model NAME --checkpoint PATH`` does the same on a
  checkpoint trained anywhere (``suite/analyze.py``).

**Which layers, in which order.** Every ``Conv1d/2d/3d`` and ``Linear`` weight, in module
registration order, which for the registry's networks is the forward order from stem to head
(parallel branches — inception branches, a block's projection shortcut — in declaration
order). Convs *inside* a shortcut op (the 3×3 conv of Pool Skip, of ``residual``, ...) are
measured too but kept out of the per-layer series, so a plain net and its Pool Skip version
share the same layer axis, as in the paper's Figure 4 (the ``in_skip_op`` flag marks them in
the per-layer table). The *shallow third* is the first ⌈L/3⌉ layers of that series.

**l2/l1 (Hoyer 2004).** The paper plots "the l2/l1 ratio for each layer, as proposed by Hoyer
(2004)": higher means more weights near zero. For one layer, the weight tensor is flattened
into a single vector ``w`` of all ``n = numel`` entries (output channels × input channels ×
kernel taps together), because an elimination singularity is a whole channel or a whole
kernel gone to zero and should raise the layer's value. The raw ratio ``r = ‖w‖₂ / ‖w‖₁``
ranges over [1/√n, 1], so layers of different size are not comparable; Hoyer's Eq. (1)
normalises it to [0, 1]::

    l2l1 = (√n − ‖w‖₁/‖w‖₂) / (√n − 1)        (0: all |w| equal, 1: one non-zero weight)

This is the value we report as ``l2l1`` (``l2l1_raw`` keeps r). It is invariant to the
layer's scale, which matters because BN follows every conv: only relative magnitudes change
what the layer computes. The paper's Figure 4 values (0.1 … 1) lie on this [0, 1] scale; a
PyTorch-default (Kaiming-uniform) layer has ≈ 0.13, a Gaussian one ≈ 0.20.

**Near-zero weights.** ``zero_frac`` = fraction of entries with ``|w| < ε · rms(w)``,
``ε = 0.01`` (:data:`EPS_ZERO`), ``rms(w) = ‖w‖₂/√n`` — relative to the layer's own scale
for the same BN-invariance reason; a random Gaussian layer has ≈ 0.8 %. The paper prints no
zero-weight fraction; its README states "a significant reduction in the number of
shallow-layer 0 weights" with Pool Skip.

**Eliminated channels.** ``elim_frac`` = fraction of output channels (rows of a linear layer)
whose incoming-weight norm ``‖W[c]‖₂`` is below ``ε · ‖W‖₂/√C`` (ε = :data:`EPS_CHANNEL` =
0.01, i.e. 1 % of the layer's root-mean-square channel norm): the channel's output is then a
constant, a node that no longer depends on its input (an elimination singularity, Wei et al.
2008). A channel set exactly to zero always counts.

**Dead units** (needs a batch of inputs): with forward hooks on every ``nn.ReLU`` call in
order, ``dead_frac`` = fraction of channels whose ReLU output is exactly 0 at ≥ 99 %
(:data:`DEAD_SHARE`) of the batch's positions (samples × pixels) — the "Dying ReLU"
condition of the paper's Weight Inertia hypothesis. The batch is fixed (the first
:data:`BATCH` test images in ``train_eval``), the model is in eval mode.

Summary metrics (``*_shallow`` over the shallow third, plain names over all layers):
``l2l1_max_shallow``, ``l2l1_mean_shallow``, ``l2l1_max``, ``l2l1_mean``,
``zero_frac_max_shallow``, ``zero_frac_mean_shallow``, ``zero_frac_mean``,
``elim_frac_mean_shallow``, ``elim_frac_mean``, ``dead_frac_mean_shallow``,
``dead_frac_mean`` (dead-unit metrics only with a batch), ``n_layers``.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from suite.specs import RunSpec, TaskContext, TaskResult, blob

EPS_ZERO = 0.01  # |w| < EPS_ZERO · rms(w) counts as a near-zero weight
EPS_CHANNEL = 0.01  # ‖W[c]‖ < EPS_CHANNEL · rms channel norm counts as an eliminated channel
DEAD_SHARE = 0.99  # a ReLU channel that is 0 on ≥ 99 % of positions is dead
BATCH = 256  # held-out images for the dead-unit measure (train_eval)
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

METRICS = ("l2l1_max_shallow", "l2l1_mean_shallow", "l2l1_max", "l2l1_mean",
           "zero_frac_max_shallow", "zero_frac_mean_shallow", "zero_frac_mean",
           "elim_frac_mean_shallow", "elim_frac_mean", "dead_frac_mean_shallow",
           "dead_frac_mean", "n_layers")


@dataclass(frozen=True)
class LayerStats:
    """One conv/linear layer's weight statistics (see the module docstring)."""

    index: int  # position in the per-layer series (-1: inside a shortcut op, not in the series)
    name: str
    kind: str  # Conv2d, Linear, ...
    shape: tuple[int, ...]
    n: int
    l2l1: float  # Hoyer's normalised measure, [0, 1]
    l2l1_raw: float  # ‖w‖₂/‖w‖₁, [1/√n, 1]
    zero_frac: float
    elim_frac: float
    in_skip_op: bool


@dataclass(frozen=True)
class Report:
    layers: tuple[LayerStats, ...]  # every weighted layer, skip-op convs included
    dead: tuple[tuple[str, float], ...] = ()  # (ReLU module name, dead fraction) per call

    @property
    def series_layers(self) -> list[LayerStats]:
        return [s for s in self.layers if not s.in_skip_op]

    def metrics(self) -> dict[str, float]:
        main = self.series_layers
        k = math.ceil(len(main) / 3)
        out: dict[str, float] = {"n_layers": float(len(main))}
        for key, values in (("l2l1", [s.l2l1 for s in main]),
                            ("zero_frac", [s.zero_frac for s in main]),
                            ("elim_frac", [s.elim_frac for s in main]),
                            ("dead_frac", [d for _, d in self.dead])):
            if not values:
                continue
            ks = math.ceil(len(values) / 3) if key == "dead_frac" else k
            shallow = values[:ks]
            out[f"{key}_mean"] = sum(values) / len(values)
            out[f"{key}_mean_shallow"] = sum(shallow) / len(shallow)
            if key in ("l2l1", "zero_frac"):
                out[f"{key}_max_shallow"] = max(shallow)
            if key == "l2l1":
                out["l2l1_max"] = max(values)
        return out

    def series(self) -> dict[str, list[float]]:
        main = self.series_layers
        out = {"layer_l2l1": [s.l2l1 for s in main],
               "layer_l2l1_raw": [s.l2l1_raw for s in main],
               "layer_zero_frac": [s.zero_frac for s in main],
               "layer_elim_frac": [s.elim_frac for s in main]}
        if self.dead:
            out["relu_dead_frac"] = [d for _, d in self.dead]
        return out

    def table(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.layers]


def weight_stats(w: torch.Tensor, eps_zero: float = EPS_ZERO,
                 eps_channel: float = EPS_CHANNEL) -> dict[str, float]:
    """``l2l1``, ``l2l1_raw``, ``zero_frac``, ``elim_frac`` of one weight tensor
    (dim 0 = output channels). An all-zero tensor is maximally sparse: l2l1 = 1, every
    weight near zero, every channel eliminated."""
    w = w.detach().double().flatten(1) if w.dim() > 1 else w.detach().double()[:, None]
    n = w.numel()
    l1, l2 = w.abs().sum().item(), w.norm().item()
    if l2 == 0.0:
        return {"l2l1": 1.0, "l2l1_raw": 1.0, "zero_frac": 1.0, "elim_frac": 1.0}
    root = math.sqrt(n)
    hoyer = (root - l1 / l2) / (root - 1) if n > 1 else 1.0
    rms = l2 / root
    zero = (w.abs() < eps_zero * rms).double().mean().item()
    ch = w.norm(dim=1)
    elim = (ch < eps_channel * l2 / math.sqrt(w.shape[0])).double().mean().item()
    return {"l2l1": hoyer, "l2l1_raw": l2 / l1, "zero_frac": zero, "elim_frac": elim}


def _skip_op_names(model: nn.Module) -> set[str]:
    """Qualified names of modules that are shortcut ops (``is_skip_op``) or inside one."""
    names: set[str] = set()
    for name, m in model.named_modules():
        if getattr(m, "is_skip_op", False):
            names.update(f"{name}.{sub}" if sub else name for sub, _ in m.named_modules())
    return names


@torch.no_grad()
def dead_units(model: nn.Module, x: torch.Tensor, share: float = DEAD_SHARE
               ) -> list[tuple[str, float]]:
    """``(ReLU name, dead channel fraction)`` for every ``nn.ReLU`` call of one forward pass
    on ``x`` in eval mode, in call order (a ReLU module used twice appears twice)."""
    out: list[tuple[str, float]] = []
    hooks = []

    def hook(name: str):
        def fn(_m, _inp, y):
            if not isinstance(y, torch.Tensor) or y.dim() < 2:
                return
            zero = (y == 0).transpose(0, 1).flatten(1).double().mean(dim=1)  # per channel
            out.append((name, (zero >= share).double().mean().item()))
        return fn

    for name, m in model.named_modules():
        if isinstance(m, nn.ReLU):
            hooks.append(m.register_forward_hook(hook(name)))
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return out


def analyze(model: nn.Module, batch: torch.Tensor | None = None, *,
            eps_zero: float = EPS_ZERO, eps_channel: float = EPS_CHANNEL,
            dead_share: float = DEAD_SHARE) -> Report:
    """Measure every conv/linear layer of ``model`` (and, given a normalised input
    ``batch``, its dead ReLU units). See the module docstring for the definitions."""
    inside = _skip_op_names(model)
    layers, i = [], 0
    for name, m in model.named_modules():
        if not isinstance(m, WEIGHTED) or m.weight is None or m.weight.is_meta:
            continue
        skip = name in inside
        st = weight_stats(m.weight, eps_zero, eps_channel)
        layers.append(LayerStats(-1 if skip else i, name, type(m).__name__,
                                 tuple(m.weight.shape), m.weight.numel(), **st,
                                 in_skip_op=skip))
        i += 0 if skip else 1
    dead = tuple(dead_units(model, batch, dead_share)) if batch is not None else ()
    return Report(tuple(layers), dead)


def plot(curves: dict[str, Report], title: str = "") -> bytes | None:
    """A Figure-4-style PNG: per-layer l2/l1 (Hoyer) of each report on one axis, layers
    stem → head left to right, plus the near-zero-weight fraction below. ``None`` when
    matplotlib is not installed (the numbers are still recorded)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax, az) = plt.subplots(2, 1, figsize=(7.5, 4.8), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    for label, rep in curves.items():
        main = rep.series_layers
        xs = list(range(1, len(main) + 1))
        ax.plot(xs, [s.l2l1 for s in main], marker=".", lw=1.2, label=label)
        az.plot(xs, [100 * s.zero_frac for s in main], marker=".", lw=1.0, label=label)
    n = max(len(r.series_layers) for r in curves.values())
    for a in (ax, az):
        a.axvspan(0.5, math.ceil(n / 3) + 0.5, color="0.92", zorder=0)
    ax.set_ylabel("l2/l1 (Hoyer, 0–1)")
    az.set_ylabel("|w| < 1% rms (%)")
    az.set_xlabel("layer (stem → head); shaded: shallow third")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def result_parts(report: Report, label: str = "model", compare: dict[str, Report] | None = None,
                 title: str = "") -> tuple[dict[str, float], dict[str, list[float]],
                                           dict[str, Any]]:
    """``(metrics, series, artifacts)`` of a report, ready to merge into a TaskResult."""
    artifacts: dict[str, Any] = {"singularity_layers": report.table()}
    png = plot({label: report, **(compare or {})}, title)
    if png is not None:
        artifacts["singularity_plot"] = blob(png)
    return report.metrics(), report.series(), artifacts


# -- state dicts from anywhere ---------------------------------------------------------
def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The model weights in a checkpoint file, loaded with ``weights_only=True`` (no code
    runs). Accepts a bare ``state_dict``, or a dict holding one under ``model``,
    ``state_dict`` or ``model_state_dict``; strips a DataParallel ``module.`` prefix."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path!r} does not exist") from None
    except Exception as e:
        raise ValueError(f"checkpoint {path!r} cannot be read with torch.load(weights_only="
                         f"True) ({type(e).__name__}: {str(e)[:200]}); save the weights with "
                         f"torch.save(model.state_dict(), path)") from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ValueError(f"checkpoint {path!r} holds no state_dict (a dict of name -> tensor); "
                         f"save the weights with torch.save(model.state_dict(), path)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_model(name: str, checkpoint: str | None, model_args: dict[str, Any]) -> nn.Module:
    """Registry model ``name`` with the weights of ``checkpoint`` (strict: every tensor must
    match); freshly initialised when ``checkpoint`` is None."""
    import registry

    model = registry.create_model(name, **model_args)
    if checkpoint:
        state = load_state_dict(checkpoint)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"checkpoint {checkpoint!r} does not fit model {name!r} with "
                             f"{model_args or 'default args'}: {str(e)[:400]} — pass the "
                             f"model name and --model-arg values (num_classes, in_chans, "
                             f"width, ...) it was trained with") from None
    return model


def held_out_batch(bundle, n: int = BATCH) -> torch.Tensor:
    """The first ``n`` test images of a DataBundle, normalised: a fixed input batch."""
    from tasks.augment import normalize

    x = bundle.test.x[:n] if bundle.test.in_memory else torch.stack(
        [bundle.test.dataset[i][0] for i in range(min(n, len(bundle.test)))])
    return normalize(x, bundle.mean, bundle.std)


# -- the task ---------------------------------------------------------------------------
DEFAULTS: dict[str, Any] = {"checkpoint": None, "compare_model": None,
                            "compare_model_args": None, "compare_checkpoint": None,
                            "batch": BATCH}


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    """Task ``singularity``: analyse ``spec.model`` (weights from ``params.checkpoint``, else
    as initialised) and, with ``params.compare_model``, a second model on the same figure.
    With ``spec.dataset`` set, the dead-unit measure runs on its first ``params.batch`` test
    images."""
    unknown = set(spec.params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"singularity: unknown params {sorted(unknown)}; known: "
                         f"{', '.join(sorted(DEFAULTS))}")
    p = {**DEFAULTS, **spec.params}
    torch.manual_seed(spec.seed)
    margs = dict(spec.model_args)
    batch = None
    if spec.dataset:
        import registry

        bundle = registry.create_dataset(spec.dataset, **spec.dataset_args)
        margs = {"num_classes": bundle.num_classes, "in_chans": bundle.in_chans, **margs}
        batch = held_out_batch(bundle, int(p["batch"]))
    model = load_model(spec.model, p["checkpoint"], margs)
    report = analyze(model, batch)
    compare = {}
    if p["compare_model"]:
        cargs = {**margs, **(p["compare_model_args"] or {})}
        other = load_model(p["compare_model"], p["compare_checkpoint"], cargs)
        compare[p["compare_model"]] = analyze(other, batch)
    ctx.provenance["singularity"] = {"eps_zero": EPS_ZERO, "eps_channel": EPS_CHANNEL,
                                     "dead_share": DEAD_SHARE, "checkpoint": p["checkpoint"],
                                     "batch": 0 if batch is None else len(batch)}
    metrics, series, artifacts = result_parts(report, spec.model, compare, spec.model)
    for rep in compare.values():  # the second model's numbers under compare_*
        metrics.update({f"compare_{k}": v for k, v in rep.metrics().items()})
        series.update({f"compare_{k}": v for k, v in rep.series().items()})
        artifacts["compare_layers"] = rep.table()
    return TaskResult(metrics=metrics, series=series, artifacts=artifacts)
