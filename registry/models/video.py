"""3D CNNs for action recognition used in the SoftPool paper's video experiments (Stergiou et
al., ICCV 2021, Sec. 5, video results with 3D SoftPool): torchvision's 18-layer video ResNets
(Tran et al., *A Closer Look at Spatiotemporal Convolutions for Action Recognition*, CVPR 2018):

* ``r3d_18``      — 3D ResNet-18 (full 3×3×3 convs)
* ``mc3_18``      — mixed convolutions (3D in the stem and layer1, 2D (1×3×3) afterwards)
* ``r2plus1d_18`` — (2+1)D: every 3×3×3 conv factored into 1×3×3 spatial + 3×1×1 temporal

Built with ``weights=None`` (nothing is downloaded). Inputs are ``[N, C, T, H, W]``; the
default size for counting is 3×16×112×112 (the clip size torchvision's Kinetics recipes use).
These networks contain no pooling layer apart from the final global average, so
``pool="softpool"`` applies :func:`registry.models.substitute.substitute_pool` with
``where="stem"``: the stem conv's spatial stride (1,2,2) is moved into a (1,2,2) pool after
the stem conv-BN-ReLU (documented there; our reading — the paper's layer list was not
available). ``pool=None`` or ``"original"`` keeps the network as built — the baseline arm;
``pool="max"`` is *not* the original here (there is no max pool to keep: it moves the stride
into a max pool). ``in_chans != 3`` replaces the stem's first conv.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from registry.models.substitute import substitute_pool

ORIGINAL = "original"  # pool= value that keeps the network as built (TOML has no null)
ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18")


def build(arch: str, num_classes: int = 400, in_chans: int = 3, pool: Any = None,
          where: str = "stem", geometry: str = "paper") -> nn.Module:
    import torchvision.models.video as tvv

    if arch not in ARCHS:
        raise ValueError(f"unknown video architecture {arch!r}; one of {ARCHS}")
    model = getattr(tvv, arch)(weights=None, num_classes=num_classes)
    if in_chans != 3:
        old = model.stem[0]
        model.stem[0] = nn.Conv3d(in_chans, old.out_channels, old.kernel_size, old.stride,
                                  old.padding, bias=False)
    if pool is not None and pool != ORIGINAL:
        substitute_pool(model, pool, where=where, geometry=geometry)
    return model


def _named(arch: str, default_pool: str | None):
    def factory(num_classes: int = 400, in_chans: int = 3, pool: Any = default_pool,
                where: str = "stem", geometry: str = "paper") -> nn.Module:
        return build(arch, num_classes, in_chans, pool, where, geometry)

    factory.__name__ = arch + ("_softpool" if default_pool else "")
    what = " with 3D SoftPool" if default_pool else ""
    factory.__doc__ = f"torchvision {arch} (weights=None){what}; see :func:`build`."

    return factory


r3d_18 = _named("r3d_18", None)
mc3_18 = _named("mc3_18", None)
r2plus1d_18 = _named("r2plus1d_18", None)
r3d_18_softpool = _named("r3d_18", "softpool")
mc3_18_softpool = _named("mc3_18", "softpool")
r2plus1d_18_softpool = _named("r2plus1d_18", "softpool")
