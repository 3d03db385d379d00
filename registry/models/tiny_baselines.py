"""The baselines S3Net's authors re-trained on TinyImageNet (Fan et al., arXiv 1811.09003,
Table IV, "all models implemented by the S3Net authors"; scripts
``generalizability experiment/TinyImageNet/Tiny_*.py``), where a well-kept implementation of
the same network exists: built by timm (``pretrained=False``; nothing is downloaded).

=================  ====================================  ==================================
name               the authors' script builds            here (timm)
=================  ====================================  ==================================
mobilenetv2        torchvision ``models.MobileNetV2()``  ``mobilenetv2_100`` (same network)
efficientnet_b0    efficientnet_pytorch ``efficientnet-b0``  ``efficientnet_b0``
ghostnet           their ``ghost_net.py`` (GhostNet 1.0×)  ``ghostnet_100``
se_resnet50        their ``se_resnet.py`` (SE-ResNet-50)  ``seresnet50``
=================  ====================================  ==================================

The authors' scripts keep each network's default **1000-class** head while training on the
200 TinyImageNet classes (labels 0–199 simply never hit the other logits); Table IV's
parameter counts (3.5M, 5.3M, 5.2M, 28.1M) are those of the 1000-class networks, which these
factories reproduce with ``num_classes=1000``. The other Table IV baselines (OctResNet-50,
LambdaNetwork, ScaleNet, RandomWire-WS) have no well-kept implementation here; their claims
are skipped with that reason (tasks.toml).
"""

from __future__ import annotations

from torch import nn

TIMM_NAMES = {"mobilenetv2": "mobilenetv2_100", "efficientnet_b0": "efficientnet_b0",
              "ghostnet": "ghostnet_100", "se_resnet50": "seresnet50"}


def build(name: str, num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    """One of :data:`TIMM_NAMES` from timm, randomly initialised."""
    import timm

    if name not in TIMM_NAMES:
        raise ValueError(f"unknown Table IV baseline {name!r}; one of {sorted(TIMM_NAMES)}")
    return timm.create_model(TIMM_NAMES[name], pretrained=False, num_classes=num_classes,
                             in_chans=in_chans)


def _named(name: str):
    def factory(num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
        return build(name, num_classes, in_chans)

    factory.__name__ = name
    factory.__doc__ = (f"{name} (timm {TIMM_NAMES[name]}), an S3Net Table IV baseline; see "
                       f":mod:`registry.models.tiny_baselines`.")
    return factory


mobilenetv2 = _named("mobilenetv2")
efficientnet_b0 = _named("efficientnet_b0")
ghostnet = _named("ghostnet")
se_resnet50 = _named("se_resnet50")
