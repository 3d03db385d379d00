"""Task ``saliency``: train a model, then score how well its FullGrad saliency maps find the
object — S3Net's interpretability claim made a number (Fan et al., arXiv 1811.09003,
Sec. "Interpretability": the sparse shortcut topology conveys gradients to the input along
short paths, so its "saliency map ... should be more accurate and sharper"; the authors show
FullGrad maps and their segmentations on ImageNet images, without a score).

**FullGrad** (Srinivas & Fleuret, *Full-Gradient Representation for Neural Network
Visualization*, NeurIPS 2019, Eq. 2 and Sec. 4): for a ReLU network with biases ``b`` (conv,
linear and the implicit bias ``β − γ·μ/√(σ²+ε)`` of every eval-mode BatchNorm),

    f(x) = ∇ₓf(x)ᵀx + Σ_b ∇_b f(x)ᵀ b                       (completeness, Eq. 2)
    S(x) = ψ(∇ₓf ⊙ x) + Σ_layers Σ_channels ψ(∇_b f ⊙ b)      (FullGrad saliency)

with ψ = |·|, min-max rescaling and bilinear upsampling to the input size. The official code
(idiap/fullgrad-saliency, which the S3Net authors copy) rescales each map over all its
channels (``scale="image"``) and upsamples with ``align_corners=True``; pytorch-grad-cam's
``FullGrad`` rescales each channel (``scale="channel"``) and resizes with OpenCV
(``align_corners=False``); ``tests/test_saliency.py`` checks both conventions, the latter
against pytorch-grad-cam itself. The class scored is the item's true label.

**Scores** on ``cluttered_fashion`` (:func:`registry.datasets.derived.render_cluttered`:
the object mask is known):

* ``loc_energy`` — the share of saliency energy inside the object mask, Σ S·M / Σ S
  (the "energy-based pointing game" of Wang et al., *Score-CAM*, CVPRW 2020, Sec. 4.3), mean
  over images; ``loc_gain`` = that share ÷ the mask's area share (1 = no better than a
  uniform map).
* ``deletion_auc`` / ``insertion_auc`` (Petsiuk, Das, Saenko, *RISE*, BMVC 2018, Sec. 4.1):
  the true-class softmax probability as the most salient pixels are removed (set to black,
  the canvas background) / inserted into a black canvas, in ``steps`` equal steps; area under
  the curve (lower deletion and higher insertion = more faithful maps).

params: everything :mod:`tasks.train_eval` takes, plus ``saliency = {n_images (256), steps
(16), batch (64), scale ("image"), align_corners (true), n_figure (8)}``. Metrics: those of
``train_eval`` plus ``loc_energy``, ``loc_gain``, ``deletion_auc``, ``insertion_auc``,
``completeness_err`` (the largest relative error of Eq. 2 over the scored images). Artifact
``saliency_png``: images, masks and maps of the first ``n_figure`` test items.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from suite.specs import RunSpec, TaskContext, TaskResult, blob
from tasks import TaskFailed
from tasks.augment import normalize

SAL_DEFAULTS: dict[str, Any] = {"n_images": 256, "steps": 16, "batch": 64, "scale": "image",
                                "align_corners": True, "n_figure": 8}
BIAS_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# -- FullGrad -------------------------------------------------------------------------------
def effective_bias(m: nn.Module) -> torch.Tensor | None:
    """The bias a module adds per output channel: ``bias`` of a conv/linear layer, or
    ``β − γ·μ/√(σ² + ε)`` of an eval-mode BatchNorm (its affine map's offset)."""
    if isinstance(m, BN_TYPES):
        if m.running_mean is None:
            return None
        scale = torch.rsqrt(m.running_var + m.eps)
        gamma = m.weight if m.weight is not None else torch.ones_like(scale)
        beta = m.bias if m.bias is not None else torch.zeros_like(scale)
        return (beta - gamma * m.running_mean * scale).detach()
    if isinstance(m, BIAS_TYPES) and m.bias is not None:
        return m.bias.detach()
    return None


@contextmanager
def no_inplace(model: nn.Module):
    """Turn off ``inplace`` activations while gradients of layer outputs are taken (an
    in-place ReLU would overwrite the BatchNorm output whose gradient FullGrad needs)."""
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        m.inplace = False
    try:
        yield model
    finally:
        for m in changed:
            m.inplace = True


def fullgrad_decompose(model: nn.Module, x: torch.Tensor, target: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """``(f, ∇ₓf ⊙ x, [∇_b f ⊙ b per bias module])`` for the logits ``f`` of classes
    ``target`` (one per item). The model must be in eval mode."""
    if model.training:
        raise ValueError("FullGrad needs the model in eval mode (BatchNorm biases are fixed)")
    mods = [(m, b) for m in model.modules() if (b := effective_bias(m)) is not None]
    outs: list[torch.Tensor] = []
    biases: list[torch.Tensor] = []
    hooks = []

    def keep(b):
        def hook(_m, _inp, out):
            outs.append(out)
            biases.append(b)
        return hook

    for m, b in mods:
        hooks.append(m.register_forward_hook(keep(b)))
    try:
        with no_inplace(model):
            x = x.detach().requires_grad_(True)
            logits = model(x)
            f = logits.gather(1, target.view(-1, 1)).squeeze(1)
            grads = torch.autograd.grad(f.sum(), [x, *outs])
    finally:
        for h in hooks:
            h.remove()
    terms = []
    for g, b in zip(grads[1:], biases, strict=True):
        terms.append(g * b.view(1, -1, *([1] * (g.dim() - 2))))
    return f.detach(), (grads[0] * x).detach(), [t.detach() for t in terms]


def _rescale(t: torch.Tensor, scale: str, eps: float = 1e-7) -> torch.Tensor:
    """|t| min-max rescaled to [0, 1] per image (``"image"``) or per image and channel."""
    t = t.abs()
    flat = t.flatten(1) if scale == "image" else t.flatten(2)
    lo = flat.min(-1, keepdim=True).values
    hi = (flat - lo).max(-1, keepdim=True).values
    out = (flat - lo) / (hi + eps)
    return out.view_as(t)


def fullgrad(model: nn.Module, x: torch.Tensor, target: torch.Tensor, scale: str = "image",
             align_corners: bool = True) -> torch.Tensor:
    """FullGrad saliency maps ``[B, H, W]`` (≥ 0) of classes ``target`` for inputs ``x``."""
    if scale not in ("image", "channel"):
        raise ValueError(f"scale must be 'image' or 'channel', not {scale!r}")
    _, inp, terms = fullgrad_decompose(model, x, target)
    size = x.shape[-2:]
    sal = _rescale(inp, scale).sum(1)
    for t in terms:
        if t.dim() != 4:  # linear layers: no spatial map (both reference codes skip them)
            continue
        r = _rescale(t, scale)
        if r.shape[-2:] != size:
            r = F.interpolate(r, size=size, mode="bilinear", align_corners=align_corners)
        sal = sal + r.sum(1)
    return sal


# -- scores ---------------------------------------------------------------------------------
def energy_in_mask(sal: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Share of each map's (non-negative) energy inside its mask: ``Σ S·M / Σ S``, ``[B]``."""
    s = sal.clamp_min(0).flatten(1)
    return (s * mask.flatten(1).to(s.dtype)).sum(1) / (s.sum(1) + eps)


@torch.no_grad()
def deletion_insertion(model: nn.Module, x: torch.Tensor, sal: torch.Tensor,
                       target: torch.Tensor, baseline: torch.Tensor, steps: int = 16
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """RISE's deletion and insertion AUCs ``[B]`` (Petsiuk et al. 2018): pixels in order of
    decreasing saliency are replaced by ``baseline`` (deletion) or copied from ``x`` into the
    baseline (insertion), ``steps`` equal chunks; the curve is the softmax probability of
    ``target``, its area the trapezoid rule over [0, 1]."""
    b, _, h, w = x.shape
    order = sal.flatten(1).argsort(1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w).expand(b, -1))
    rank = rank.view(b, 1, h, w)
    base = baseline.expand_as(x)
    dele, ins = [], []
    for i in range(steps + 1):
        k = round(i * h * w / steps)
        moved = rank < k
        for imgs, out in ((torch.where(moved, base, x), dele), (torch.where(moved, x, base), ins)):
            p = model(imgs).softmax(1).gather(1, target.view(-1, 1)).squeeze(1)
            out.append(p)
    d, n = torch.stack(dele, 1), torch.stack(ins, 1)
    return torch.trapezoid(d, dx=1 / steps, dim=1), torch.trapezoid(n, dx=1 / steps, dim=1)


# -- figure ---------------------------------------------------------------------------------
def figure_png(images: torch.Tensor, masks: torch.Tensor, sal: torch.Tensor, title: str) -> bytes:
    """PNG: row 1 the inputs with the mask outline, row 2 the FullGrad maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i, 0].numpy(), cmap="gray", vmin=0, vmax=255)
        axes[0, i].contour(masks[i].float().numpy(), levels=[0.5], colors="lime",
                           linewidths=0.6)
        axes[1, i].imshow(sal[i].numpy(), cmap="inferno")
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# -- the task -------------------------------------------------------------------------------
def resolve_saliency(params: dict[str, Any]) -> dict[str, Any]:
    sp = params.get("saliency") or {}
    unknown = set(sp) - set(SAL_DEFAULTS)
    if unknown:
        raise ValueError(f"saliency: unknown params.saliency keys {sorted(unknown)}; known: "
                         f"{', '.join(sorted(SAL_DEFAULTS))}")
    return {**SAL_DEFAULTS, **sp}


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    from tasks.train_eval import fit

    sp = resolve_saliency(spec.params)
    train_params = {k: v for k, v in spec.params.items() if k != "saliency"}
    result, model, bundle = fit(spec, ctx, train_params)
    mask_all = getattr(bundle.test, "mask", None)
    if mask_all is None or not bundle.test.in_memory:
        raise TaskFailed(f"saliency needs a dataset with object masks (e.g. "
                         f"cluttered_fashion); {spec.dataset!r} has none")
    device = torch.device(ctx.device)
    model = model.float().eval()
    n = min(int(sp["n_images"]), len(bundle.test))
    raw, y, mask = bundle.test.x[:n], bundle.test.y[:n], mask_all[:n]
    black = normalize(torch.zeros(1, *raw.shape[1:], dtype=torch.uint8), bundle.mean,
                      bundle.std).to(device)
    sals, loc, dele, ins, comp = [], [], [], [], []
    for i in range(0, n, int(sp["batch"])):
        xb = normalize(raw[i:i + sp["batch"]].to(device), bundle.mean, bundle.std)
        yb, mb = y[i:i + sp["batch"]].to(device), mask[i:i + sp["batch"]].to(device)
        f, inp, terms = fullgrad_decompose(model, xb, yb)
        total = inp.flatten(1).sum(1) + sum(t.flatten(1).sum(1) for t in terms)
        comp.append(((total - f).abs() / f.abs().clamp_min(1e-6)).max())
        s = fullgrad(model, xb, yb, sp["scale"], bool(sp["align_corners"]))
        sals.append(s.cpu())
        loc.append(energy_in_mask(s, mb).cpu())
        d, ins_ = deletion_insertion(model, xb, s, yb, black, int(sp["steps"]))
        dele.append(d.cpu())
        ins.append(ins_.cpu())
    loc_t = torch.cat(loc)
    area = mask.flatten(1).float().mean(1)
    metrics = dict(result.metrics)
    metrics.update(loc_energy=float(loc_t.mean()), loc_gain=float((loc_t / area).mean()),
                   deletion_auc=float(torch.cat(dele).mean()),
                   insertion_auc=float(torch.cat(ins).mean()),
                   completeness_err=float(torch.stack(comp).max()))
    ctx.provenance["saliency"] = {"method": "FullGrad (Srinivas & Fleuret 2019)",
                                  "target": "true label", "n_images": n, **sp}
    k = min(int(sp["n_figure"]), n)
    png = figure_png(raw[:k].cpu(), mask[:k].cpu(), torch.cat(sals)[:k],
                     f"{spec.model} {spec.model_args} seed {spec.seed}: FullGrad "
                     f"(energy in mask {metrics['loc_energy']:.2f})")
    return TaskResult(metrics=metrics, series=result.series,
                      artifacts={"saliency_png": blob(png)})
