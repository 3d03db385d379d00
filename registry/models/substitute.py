"""Swap the pooling layers of an existing network for any registered pool, the way the SoftPool
paper does (Stergiou, Poppe, Kalliatakis, *Refining activation downsampling with SoftPool*,
ICCV 2021, arXiv 2101.00440; the authors' ``main/models/resnet.py`` and ``densent.py``).

``substitute_pool(model, pool="softpool", where="paper")`` edits ``model`` in place and returns
it. Which layers ``where`` selects, per family:

==========================  ===================================  ==============================
family                      ``where="paper"`` (default)           other choices
==========================  ===================================  ==============================
ResNet / ResNeXt / WRN      stem max pool (3×3/2, pad 1) →        ``"stem"`` (same), ``"all"``
(timm or torchvision)       pool with kernel 2, stride 2          (same: the only other pool is
                                                                  the global average, kept)
DenseNet (timm/torchvision) stem max pool → pool k 2, s 2         ``"transitions"``: the three
                                                                  2×2/2 transition avg pools;
                                                                  ``"all"``: stem + transitions
3D video ResNets            ``"stem"``: the stem conv's spatial   ``"all"`` (same; there is no
(torchvision r3d_18,        stride (1,2,2) is moved into a        other pooling layer)
mc3_18, r2plus1d_18)        (1,2,2)/(1,2,2) pool after it
any other ``nn.Module``     (error: no paper rule)                ``"all"``: every non-adaptive
                                                                  Max/AvgPool{1,2,3}d, same
                                                                  geometry
==========================  ===================================  ==============================

Why these layers:

* The authors' ResNet code replaces ``nn.MaxPool2d(3, 2, padding=1)`` in the stem with
  ``SoftPool2d(kernel_size=(2, 2), stride=(2, 2))`` — the only pooling layer of a ResNet
  besides the global average (which neither they nor we touch). Both geometries give the
  same output size (e.g. 112 → 56), so the rest of the network is unchanged.
* Their DenseNet code replaces the stem max pool the same way; the replacement of the
  transition average pools is written but **commented out** in the released ``densent.py``
  (``#else: SoftPool2d(...)``). So ``"paper"`` = stem only; ``"transitions"``/``"all"`` give
  the fuller substitution, whose transition pools keep their 2×2/2 geometry.
* torchvision's 18-layer video ResNets have no pooling layer except the global average: all
  downsampling is done by strided convolutions. The stride of later stages is a conv's, as in
  the 2D ResNets whose strided convs SoftPool also leaves alone; the stem's (1,2,2) stride is
  the 3D counterpart of the 2D stem's pooled downsampling, so ``"stem"`` gives the stem conv
  stride 1 and inserts the pool (kernel = stride = (1,2,2)) right after the stem's first
  conv-BN-ReLU. Output shapes and parameter count are unchanged (the stem conv then runs at
  full resolution, ~4× its FLOPs). This is our reading, not a layer list from the paper.

``geometry="paper"`` (default) uses the authors' kernel 2 / stride 2 (1,2,2 in 3D) at the stem;
``geometry="same"`` copies the replaced layer's kernel, stride and padding. Parameter-free
pools leave the parameter count unchanged; every other module is left as it was. The sites
that were replaced are recorded in ``model.pool_substitution`` (``sites``; ``kept``: sites
left alone, below).

A site that already holds the requested kind — ``pool="max"`` (or an alias) at a max pool,
``"avg"`` at an average pool — is **kept as it is**, geometry included: substituting a layer
by its own kind changes nothing, so ``pool="max"`` on a ResNet/DenseNet *is* the original
network, the baseline arm of a SoftPool claim. To force a 2×2 max pool there instead, pass the
pool as a callable (e.g. ``registry.pools.classic.max_pool``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

import registry

_POOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
               nn.AvgPool3d)
WHERE = ("paper", "stem", "transitions", "all")


def family_of(model: nn.Module) -> str:
    """``"resnet"``, ``"densenet"``, ``"video_resnet"`` or ``"generic"`` from the structure."""
    names = dict(model.named_modules())
    if type(model).__name__ == "VideoResNet":
        return "video_resnet"
    if "features.pool0" in names:
        return "densenet"
    if "maxpool" in names and "layer1" in names:
        return "resnet"
    return "generic"


def _strided_stem_conv(model: nn.Module) -> tuple[int, nn.Conv3d] | None:
    stem = getattr(model, "stem", None)
    if not isinstance(stem, nn.Sequential):
        return None
    for i, m in enumerate(stem):
        if isinstance(m, nn.Conv3d) and tuple(m.stride)[1:] == (2, 2):
            return i, m
    return None


def _dim(m: nn.Module) -> int:
    return {"1d": 1, "2d": 2, "3d": 3}[type(m).__name__[-2:].lower()]


def _channels_before(model: nn.Module, site: str) -> int | None:
    """Channels at ``site``: from the last conv/BN registered before it (execution order in
    the sequential backbones handled here)."""
    c = None
    for name, m in model.named_modules():
        if name == site:
            return c
        if isinstance(m, nn.modules.conv._ConvNd):
            c = m.out_channels
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
    return c


def pool_sites(model: nn.Module, where: str = "paper") -> list[str]:
    """Names of the pooling modules ``where`` selects (video stems: the stem conv's name)."""
    if where not in WHERE:
        raise ValueError(f"where must be one of {WHERE}, not {where!r}")
    fam = family_of(model)
    pools = [n for n, m in model.named_modules() if isinstance(m, _POOL_TYPES)]
    if fam == "resnet":
        if where == "transitions":
            raise ValueError("a ResNet has no transition pools; use where='paper'/'stem'/'all'")
        return ["maxpool"] if where in ("paper", "stem") else pools
    if fam == "densenet":
        stem = ["features.pool0"]
        trans = [n for n in pools if n.startswith("features.transition")]
        return {"paper": stem, "stem": stem, "transitions": trans, "all": stem + trans}[where]
    if fam == "video_resnet":
        if where == "transitions":
            raise ValueError("video ResNets have no transition pools; use where='stem'")
        found = _strided_stem_conv(model)
        return [f"stem.{found[0]}"] if found else []
    if where != "all":
        raise ValueError(f"no paper rule for {type(model).__name__}; use where='all' to replace "
                         f"every pooling layer")
    return pools


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def _same_kind(pool: Any, old: nn.Module) -> bool:
    if not isinstance(pool, str) or pool not in registry.POOLS:
        return False
    kind = registry.POOLS.resolve(pool)
    return (kind == "max" and isinstance(old, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))) or (
        kind == "avg" and isinstance(old, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)))


def substitute_pool(model: nn.Module, pool: Any = "softpool", where: str = "paper",
                    geometry: str = "paper", **pool_kwargs: Any) -> nn.Module:
    """Replace the pooling layers ``where`` selects by ``pool`` (a registered name or a class);
    see the module docstring for the per-family rules. Returns ``model`` (edited in place)."""
    if geometry not in ("paper", "same"):
        raise ValueError(f"geometry must be 'paper' or 'same', not {geometry!r}")
    fam = family_of(model)
    sites = pool_sites(model, where)
    done: list[str] = []
    kept: list[str] = []
    if fam == "video_resnet":
        for site in sites:
            idx = int(site.rsplit(".", 1)[1])
            conv = model.stem[idx]
            kernel = (1, 2, 2)  # no pool is replaced here, so both geometries are (1,2,2)
            conv.stride = (conv.stride[0], 1, 1)
            new = registry.create_pool(pool, kernel_size=kernel, stride=kernel, padding=0,
                                       dim=3, channels=conv.out_channels, **pool_kwargs)
            mods = list(model.stem)
            # after the conv's BN + ReLU (the next ReLU), as the 2D stem pools sit
            at = next((j for j in range(idx + 1, len(mods)) if isinstance(mods[j], nn.ReLU)),
                      idx)
            mods.insert(at + 1, new)
            model.stem = nn.Sequential(*mods)
            done.append(site)
    else:
        for site in sites:
            old = model.get_submodule(site)
            if _same_kind(pool, old):
                kept.append(site)
                continue
            k, s, p = old.kernel_size, old.stride, old.padding
            is_stem = site in ("maxpool", "features.pool0")
            if geometry == "paper" and is_stem:
                k, s, p = 2, 2, 0
            new = registry.create_pool(pool, kernel_size=k, stride=s, padding=p, dim=_dim(old),
                                       channels=_channels_before(model, site), **pool_kwargs)
            _set(model, site, new)
            done.append(site)
    pool_name = pool if isinstance(pool, str) else getattr(pool, "__name__", repr(pool))
    model.pool_substitution = {"pool": pool_name, "where": where, "geometry": geometry,
                               "family": fam, "sites": done, "kept": kept}
    return model
