"""ImageNet models that S3Net's Table V (Fan et al., IEEE TAI 2022, arXiv 1811.09003) quotes
from other works and that timm builds, so the suite can measure them instead of only showing
the quoted numbers: MobileNetV2 1.4 (Sandler et al. 2018), RegNetX-600MF (Radosavovic et al.
2020) and DeiT-Ti (Touvron et al. 2021). DenseNet-121 is in :mod:`registry.models.imagenet`.

Built by ``timm.create_model(name, pretrained=False)``: nothing is downloaded.
"""

from __future__ import annotations

from torch import nn

#: registry name -> timm name
TIMM_NAMES = {"mobilenetv2_140": "mobilenetv2_140", "regnetx_600mf": "regnetx_006",
              "deit_tiny": "deit_tiny_patch16_224"}


def _build(name: str, num_classes: int, in_chans: int, **kwargs) -> nn.Module:
    try:
        import timm
    except ImportError as e:  # the `models` extra
        raise RuntimeError(f"{name} needs timm: pip install 'poolrepro[models]'") from e
    return timm.create_model(TIMM_NAMES[name], pretrained=False, num_classes=num_classes,
                             in_chans=in_chans, **kwargs)


def mobilenetv2_140(num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    """MobileNetV2 with width multiplier 1.4 (Sandler et al. 2018, Table 4 row "1.4")."""
    return _build("mobilenetv2_140", num_classes, in_chans)


def regnetx_600mf(num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    """RegNetX-600MF (Radosavovic et al. 2020)."""
    return _build("regnetx_600mf", num_classes, in_chans)


def deit_tiny(num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    """DeiT-Ti, ViT-Tiny/16 at 224 px (Touvron et al. 2021). Other input sizes work too
    (timm's ``dynamic_img_size``: position embeddings resampled; the same parameters)."""
    return _build("deit_tiny", num_classes, in_chans, dynamic_img_size=True)
