"""info_retention: how much of an image survives a pooling layer (no training, seconds).

Mirrors the SoftPool paper's image-similarity comparison of pooling methods (Stergiou et al.,
ICCV 2021, Sec. 4, the table of SSIM and PSNR per pooling method at kernel sizes 2×2 and 3×3
on high-resolution image sets such as DIV2K; its values could not be read here, see
``registry/published.toml``), with our own data and a protocol written down in full:

1. **Images**: the test split of ``spec.dataset`` as uint8, scaled to [0, 1] (RGB as stored,
   no colour conversion; grey images are one channel). The mini form uses scikit-image's
   bundled photographs (``sample_photos``: 288×288 native-pixel centre crops) and
   Fashion-MNIST (28×28); the full form points ``sample_photos`` at DIV2K's images.
2. **Downsample** each image with every pool in ``params.pools`` at kernel ``k`` and stride
   ``k`` for each ``k`` in ``params.kernels`` (default 2 and 3), per channel, exactly as a
   CNN pooling layer acts on an activation map. The image is first centre-cropped to a
   multiple of ``k`` so every window is whole. Values are multiplied by ``params.scale``
   (default 1) before pooling and divided after: SoftPool's weights ``exp(x)`` depend on the
   scale (on [0, 255] it is almost max pooling), so the scale is part of the protocol.
3. **Upsample** back to the cropped size with ``params.upsample`` (``nearest``, default: each
   pooled value fills its own window, the exact inverse of the window partition;
   ``bilinear``/``bicubic`` also allowed), clip to [0, 1] as writing an image file does
   (``lp`` sums can exceed 1).
4. **Score** against the cropped original with scikit-image's
   ``structural_similarity`` (Wang et al., IEEE TIP 2004: Gaussian window σ = 1.5,
   population covariance, K1 = 0.01, K2 = 0.03, mean over channels) and
   ``peak_signal_noise_ratio``, both with ``data_range = 1``; PSNR is capped at
   :data:`PSNR_CAP` = 100 dB so that a perfect reconstruction (a flat image) stays finite.

Pools: by default every registered downsampling pool whose untrained output is a fixed
function of its input — ``max``, ``avg``, ``softpool``, ``lp`` (p = 2), ``stochastic``
(eval mode: probability-weighted, Zeiler & Fergus Eq. 5), and ``mixed`` / ``gated`` at their
initialisation (both give ½·max + ½·avg). ``lip``, ``strided_conv`` and ``pixel_unshuffle``
are left out: without training their learned layers are a random projection.

Seeds are **shards**: with ``params.shards = S`` the run with seed ``s`` scores the items
``i`` with ``i mod S == s`` (seeds must be ``0..S-1``). The task is deterministic, so runs
over the seeds are disjoint samples of the same image population and the engine's
t-interval over seeds is an interval over images. ``shards = 1`` scores everything.

Metrics (means over the shard's items): ``k{k}.ssim.{pool}``, ``k{k}.psnr.{pool}`` and the
paired ``k{k}.ssim.softpool_minus_{pool}`` / ``k{k}.psnr.softpool_minus_{pool}``; ``items``.
Artifacts: ``scores`` (per item, pool and kernel) and ``panel`` (PNG: the shard's first
image and its k = 2 reconstructions, left to right in ``params.pools`` order).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import registry
from suite.specs import RunSpec, TaskContext, TaskResult, blob
from tasks import check_params

DEFAULT_POOLS = ("max", "avg", "softpool", "lp", "stochastic", "mixed", "gated")
DEFAULTS: dict[str, Any] = {"pools": list(DEFAULT_POOLS), "kernels": [2, 3],
                            "upsample": "nearest", "scale": 1.0, "shards": 1,
                            "max_items": None, "panel": True}
UPSAMPLE = ("nearest", "bilinear", "bicubic")
PSNR_CAP = 100.0  # dB; a reconstruction with MSE ≤ 1e-10 scores this


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    p = check_params("info_retention", params, DEFAULTS)
    if p["upsample"] not in UPSAMPLE:
        raise ValueError(f"params.upsample = {p['upsample']!r} is not one of {UPSAMPLE}")
    if not p["kernels"] or any(not isinstance(k, int) or k < 2 for k in p["kernels"]):
        raise ValueError(f"params.kernels must be integers ≥ 2, got {p['kernels']!r}")
    if not isinstance(p["shards"], int) or p["shards"] < 1:
        raise ValueError(f"params.shards must be an integer ≥ 1, got {p['shards']!r}")
    if not isinstance(p["scale"], (int, float)) or p["scale"] <= 0:
        raise ValueError(f"params.scale must be a positive number, got {p['scale']!r}")
    pools = []
    for name in p["pools"]:
        canon = registry.POOLS.resolve(name)  # did-you-mean error for a typo
        meta = registry.POOLS.entry(canon).meta
        if meta.get("kind") != "pool":
            raise ValueError(f"params.pools: {name!r} is a shortcut op, not a downsampling pool")
        if meta.get("needs_channels"):
            raise ValueError(f"params.pools: {name!r} has a learned channel-mixing layer; "
                             f"untrained it is a random projection, so this task leaves it out")
        pools.append(canon)
    if "softpool" not in pools:
        raise ValueError("params.pools must include 'softpool' (the paired differences are "
                         "SoftPool minus each other pool)")
    p["pools"] = pools
    return p


# -- the protocol, one image at a time ----------------------------------------------------
def crop_to_multiple(img: torch.Tensor, k: int) -> torch.Tensor:
    """Centre crop ``[C, H, W]`` so that H and W are multiples of ``k``."""
    h, w = img.shape[-2:]
    hh, ww = h - h % k, w - w % k
    top, left = (h - hh) // 2, (w - ww) // 2
    return img[..., top:top + hh, left:left + ww]


def reconstruct(img: torch.Tensor, pool: torch.nn.Module, k: int, upsample: str = "nearest",
                scale: float = 1.0) -> torch.Tensor:
    """Steps 2–3: ``img`` ``[C, H, W]`` in [0, 1] (H, W multiples of ``k``) → pooled by
    ``pool`` (kernel = stride = ``k``), upsampled back to ``H×W``, clipped to [0, 1]."""
    with torch.no_grad():
        y = pool(img[None].double() * scale) / scale
        kw = {} if upsample == "nearest" else {"align_corners": False}
        up = F.interpolate(y, size=tuple(img.shape[-2:]), mode=upsample, **kw)
    return up[0].clamp(0.0, 1.0)


def score(original: torch.Tensor, rec: torch.Tensor) -> tuple[float, float]:
    """Step 4: (SSIM, PSNR in dB) of ``rec`` against ``original``, both ``[C, H, W]`` in
    [0, 1] (scikit-image, Wang et al. 2004 settings, ``data_range = 1``)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a = original.double().permute(1, 2, 0).numpy()
    b = rec.double().permute(1, 2, 0).numpy()
    ssim = structural_similarity(a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False)
    if np.mean((a - b) ** 2) <= 10 ** (-PSNR_CAP / 10):
        return float(ssim), PSNR_CAP
    return float(ssim), min(PSNR_CAP, float(peak_signal_noise_ratio(a, b, data_range=1.0)))


def make_pool(name: str, k: int) -> torch.nn.Module:
    pool = registry.create_pool(name, kernel_size=k, stride=k, dim=2)
    return pool.double().eval()


def _panel(img: torch.Tensor, recs: list[torch.Tensor], tile: int = 128) -> bytes:
    """PNG: centre ``tile``×``tile`` of the original and of each reconstruction, side by side."""
    from PIL import Image

    tiles = [img] + recs
    h, w = img.shape[-2:]
    t = min(tile, h, w)
    top, left = (h - t) // 2, (w - t) // 2
    row = torch.cat([x[..., top:top + t, left:left + t] for x in tiles], dim=-1)
    arr = (row.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


# -- the task -----------------------------------------------------------------------------
def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    p = resolve_params(spec.params)
    if not 0 <= spec.seed < p["shards"]:
        raise ValueError(f"seed {spec.seed} names no shard: with params.shards = {p['shards']} "
                         f"the seeds are 0..{p['shards'] - 1}")
    bundle = registry.create_dataset(spec.dataset, **spec.dataset_args)
    x = bundle.test.x
    if x is None or x.dim() != 4:
        raise ValueError(f"info_retention needs an in-memory image set [N, C, H, W]; "
                         f"{spec.dataset!r} gives {None if x is None else tuple(x.shape)}")
    n = len(x) if p["max_items"] is None else min(len(x), int(p["max_items"]))
    items = list(range(spec.seed, n, p["shards"]))
    if not items:
        raise ValueError(f"shard {spec.seed} of {p['shards']} is empty ({n} items)")
    pools = {(name, k): make_pool(name, k) for name in p["pools"] for k in p["kernels"]}

    rows: list[dict[str, Any]] = []
    panel_recs: list[torch.Tensor] = []
    for j, i in enumerate(items):
        img = x[i].double() / 255.0
        for k in p["kernels"]:
            orig = crop_to_multiple(img, k)
            for name in p["pools"]:
                rec = reconstruct(orig, pools[(name, k)], k, p["upsample"], float(p["scale"]))
                s, q = score(orig, rec)
                rows.append({"item": i, "k": k, "pool": name, "ssim": s, "psnr": q})
                if j == 0 and k == p["kernels"][0] and p["panel"]:
                    panel_recs.append(rec)
        if ctx.report and (j + 1) % max(1, len(items) // 10) == 0:
            ctx.report(j + 1, len(items), {})

    metrics: dict[str, float] = {"items": float(len(items))}
    for k in p["kernels"]:
        for what in ("ssim", "psnr"):
            per = {name: np.array([r[what] for r in rows if r["k"] == k and r["pool"] == name])
                   for name in p["pools"]}
            for name, v in per.items():
                metrics[f"k{k}.{what}.{name}"] = float(v.mean())
                if name != "softpool":
                    metrics[f"k{k}.{what}.softpool_minus_{name}"] = float(
                        (per["softpool"] - v).mean())
    ctx.provenance.update({"dataset": bundle.provenance, "shard": [spec.seed, p["shards"]],
                           "items": items if len(items) <= 50 else f"{len(items)} items",
                           "softpool_path": _softpool_path()})
    artifacts: dict[str, Any] = {"scores": rows}
    if panel_recs:
        artifacts["panel"] = blob(_panel(crop_to_multiple(x[items[0]].double() / 255.0,
                                                          p["kernels"][0]), panel_recs))
        artifacts["panel_order"] = ["original", *p["pools"]]
    return TaskResult(metrics=metrics, artifacts=artifacts)


def _softpool_path() -> str | None:
    from registry.pools.softpool import last_path

    return last_path()
