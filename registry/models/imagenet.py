"""ImageNet CNNs of the SoftPool paper (Stergiou et al., ICCV 2021, Sec. 5 / ImageNet table;
the architectures whose SoftPool weights the authors released): ResNet-18/34/50/101/152,
DenseNet-121/161/169, ResNeXt-50/101 (32×4d) and Wide-ResNet-50-2.

Built by timm (``timm.create_model(name, pretrained=False)`` — nothing is downloaded). If timm
cannot be imported, torchvision's constructors (``weights=None``) are used instead; they build
the same networks with the same module names (``maxpool``, ``features.pool0``,
``features.transitionN.pool``) and the same parameter counts, except that torchvision has no
ResNeXt-101 32×4d (that one then raises). ``model.backend`` says which was used.

``pool=None`` or ``"original"`` keeps the original pooling; ``pool="softpool"`` (or any
registered pool) calls :func:`registry.models.substitute.substitute_pool` with ``where``
(default ``"paper"``: the stem max pool, as the authors' code does). ``pool="max"`` also gives
the original network (a max pool is kept as it is, 3×3/2 geometry included), so it is the
natural baseline arm of a SoftPool claim. The ``*_softpool`` names are the same factories with
``pool="softpool"``.

``width`` (mini tier) scales the channel counts and keeps the layer list: ResNet, ResNeXt and
Wide-ResNet get ``channels = width·(64, 128, 256, 512)`` (timm's stage widths; the bottleneck
width follows from ``base_width``/``cardinality`` as in the full model, so ResNeXt-50 keeps 32
groups, each 1 channel wide at width 1/4, and WRN-50-2 keeps its 2× bottleneck; timm keeps the
plain 7×7 stem conv at 64 channels whatever the width); DenseNet gets ``growth_rate = width·k``
(k = 32, or 48 for DenseNet-161; timm sizes the stem as 2·growth). ``width != 1`` needs timm.

Naming: plain ``resnet50`` etc. are these ImageNet models; the CIFAR ResNets of the PoolSkip
paper are ``cifar_resnet*`` (:mod:`registry.models.cifar_resnet`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from registry.models.substitute import substitute_pool

ORIGINAL = "original"  # pool= value that keeps the network as built (TOML has no null)
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121",
         "densenet161", "densenet169", "resnext50_32x4d", "resnext101_32x4d",
         "wide_resnet50_2")


def _torchvision(arch: str, num_classes: int, in_chans: int) -> nn.Module:
    import torchvision.models as tvm

    if not hasattr(tvm, arch):
        raise RuntimeError(f"{arch} needs timm (torchvision has no such model); "
                           f"`pip install timm`")
    model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
    if in_chans != 3:
        stem_name = "features.conv0" if arch.startswith("densenet") else "conv1"
        old = model.get_submodule(stem_name)
        new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding,
                        bias=False)
        parent, _, attr = stem_name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)
    return model


_GROWTH = {"densenet121": 32, "densenet161": 48, "densenet169": 32}


def width_kwargs(arch: str, width: float) -> dict[str, Any]:
    """timm keyword arguments that scale ``arch``'s channel counts by ``width``."""
    if width == 1:
        return {}
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    if arch.startswith("densenet"):
        return {"growth_rate": max(1, round(_GROWTH[arch] * width))}
    return {"channels": tuple(max(1, round(c * width)) for c in (64, 128, 256, 512))}


def build(arch: str, num_classes: int = 1000, in_chans: int = 3, pool: Any = None,
          where: str = "paper", geometry: str = "paper", width: float = 1.0,
          **kwargs: Any) -> nn.Module:
    """One of :data:`ARCHS`, optionally at reduced ``width`` and with its pools substituted."""
    if arch not in ARCHS:
        raise ValueError(f"unknown ImageNet architecture {arch!r}; one of {ARCHS}")
    kwargs = {**width_kwargs(arch, width), **kwargs}
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None:
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes,
                                  in_chans=in_chans, **kwargs)
        model.backend = "timm"
    else:
        if kwargs:
            raise TypeError(f"extra arguments {sorted(kwargs)} need timm")
        model = _torchvision(arch, num_classes, in_chans)
        model.backend = "torchvision"
    if pool is not None and pool != ORIGINAL:
        substitute_pool(model, pool, where=where, geometry=geometry)
    return model


def _named(arch: str, default_pool: str | None):
    def factory(num_classes: int = 1000, in_chans: int = 3, pool: Any = default_pool,
                where: str = "paper", geometry: str = "paper", width: float = 1.0,
                **kwargs: Any) -> nn.Module:
        return build(arch, num_classes, in_chans, pool, where, geometry, width, **kwargs)

    factory.__name__ = arch + ("_softpool" if default_pool else "")
    factory.__doc__ = (f"{arch} (timm, pretrained=False){' with SoftPool' if default_pool else ''}"
                       f" — SoftPool paper ImageNet model; see :func:`build`.")
    return factory


resnet18 = _named("resnet18", None)
resnet34 = _named("resnet34", None)
resnet50 = _named("resnet50", None)
resnet101 = _named("resnet101", None)
resnet152 = _named("resnet152", None)
densenet121 = _named("densenet121", None)
densenet161 = _named("densenet161", None)
densenet169 = _named("densenet169", None)
resnext50_32x4d = _named("resnext50_32x4d", None)
resnext101_32x4d = _named("resnext101_32x4d", None)
wide_resnet50_2 = _named("wide_resnet50_2", None)
resnet18_softpool = _named("resnet18", "softpool")
resnet34_softpool = _named("resnet34", "softpool")
resnet50_softpool = _named("resnet50", "softpool")
resnet101_softpool = _named("resnet101", "softpool")
resnet152_softpool = _named("resnet152", "softpool")
densenet121_softpool = _named("densenet121", "softpool")
densenet161_softpool = _named("densenet161", "softpool")
densenet169_softpool = _named("densenet169", "softpool")
resnext50_32x4d_softpool = _named("resnext50_32x4d", "softpool")
resnext101_32x4d_softpool = _named("resnext101_32x4d", "softpool")
wide_resnet50_2_softpool = _named("wide_resnet50_2", "softpool")
