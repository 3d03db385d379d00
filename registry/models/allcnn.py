"""All-CNN and its siblings (Springenberg, Dosovitskiy, Brox, Riedmiller, *Striving for
Simplicity: The All Convolutional Net*, ICLR 2015 workshop, arXiv 1412.6806), Tables 1-2.

Base networks (Table 1; input 32×32 RGB; every conv is followed by ReLU, the last one too):

=====================  =====================  ======================
Model A                Model B                Model C
=====================  =====================  ======================
5×5 conv 96            5×5 conv 96            3×3 conv 96
                       1×1 conv 96            3×3 conv 96
3×3 max-pool, s 2      3×3 max-pool, s 2      3×3 max-pool, s 2
5×5 conv 192           5×5 conv 192           3×3 conv 192
                       1×1 conv 192           3×3 conv 192
3×3 max-pool, s 2      3×3 max-pool, s 2      3×3 max-pool, s 2
3×3 conv 192           (same tail)            (same tail)
1×1 conv 192
1×1 conv 10
global average over 6×6, softmax
=====================  =====================  ======================

Variants (Table 2, shown for C; A and B are derived the same way, Sec. 3.1):

* ``strided``  (Strided-CNN-X): the pool is removed and the conv before it gets stride 2.
* ``convpool`` (ConvPool-CNN-X): a dense 3×3 conv (C → C, stride 1) is added before each pool
  ("the same kernel size as the pooling"), so it has All-CNN's parameter count.
* ``all``      (All-CNN-X): each pool is replaced by a 3×3 conv with stride 2 (C → C) + ReLU.

Padding — not stated in the tables; chosen so the last map is the paper's 6×6 at 32×32 input:
every conv is "same"-padded (5×5: 2, 3×3: 1, 1×1: 0) except the first conv of the tail (3×3
conv 192), which is **valid**; the 3×3/2 pools and their stride-2 replacements use padding 1,
so 32 → 16 → 8 → (valid 3×3) 6. (With all convs padded the map would be 8×8; CS4240's README
and the Keras re-implementation reach the same conclusion.)

Regularisation (Sec. 3.2): dropout 20% on the input and 50% after each pool or the layer that
replaces it (for Strided-CNN: after the stride-2 conv). No batch norm in the paper
(``bn=True`` adds BN after every conv but the classifier, an option outside the paper).
``final_relu`` keeps the table's ReLU after "1×1 conv 10" (default True, as printed).

``pool=`` swaps the 3×3/2 max pool of the base and ConvPool models for any registered pool
(``create_pool(pool, kernel_size=3, stride=2, padding=1, channels=C)``); the Strided- and
All-CNN models have no pool and reject a ``pool=`` argument. ``width`` scales 96/192.

Parameter counts (10 classes): A 839,242; B 885,610; C 954,730; ConvPool/All-A 1,254,250;
ConvPool/All-B 1,300,618; ConvPool/All-C 1,369,738 (= the Keras re-implementation's figure).
See ``tests/test_param_counts.py`` for how they compare with Table 3's approximate values.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry

MODELS = ("a", "b", "c")
VARIANTS = ("base", "strided", "convpool", "all")


def _stage_convs(model: str, stage: int) -> list[tuple[int, int]]:
    """(kernel, channel-multiple of c1) of the convs before pool ``stage`` (1 or 2)."""
    mult = 1 if stage == 1 else 2
    if model == "a":
        return [(5, mult)]
    if model == "b":
        return [(5, mult), (1, mult)]
    return [(3, mult), (3, mult)]


class AllCNN(nn.Module):
    """Springenberg et al.'s Model A/B/C and the Strided-, ConvPool- and All-CNN variants."""

    def __init__(self, model: str = "c", variant: str = "all", num_classes: int = 10,
                 in_chans: int = 3, width: float = 1.0, pool: Any = None, bn: bool = False,
                 final_relu: bool = True, dropout: bool = True):
        super().__init__()
        model, variant = model.lower(), variant.lower()
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {model!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        if pool is not None and variant in ("strided", "all"):
            raise ValueError(
                f"{_TITLE[variant].format(M=model.upper())} has no pooling layer to swap "
                f"(pool={pool!r}); "
                f"use the base or convpool variant")
        pool = "max" if pool is None else pool
        self.model, self.variant = model, variant
        c1 = max(1, int(round(96 * width)))
        c2 = max(1, int(round(192 * width)))
        chans = {1: c1, 2: c2}

        layers: list[nn.Module] = []
        if dropout:
            layers.append(nn.Dropout(0.2))
        cin = in_chans

        def conv(cout: int, k: int, stride: int = 1, padding: int | None = None) -> None:
            nonlocal cin
            p = k // 2 if padding is None else padding
            layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=p, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            cin = cout

        for stage in (1, 2):
            c = chans[stage]
            convs = _stage_convs(model, stage)
            for i, (k, _) in enumerate(convs):
                last = i == len(convs) - 1
                conv(c, k, stride=2 if (last and variant == "strided") else 1)
            if variant == "convpool":
                conv(c, 3)
            if variant in ("base", "convpool"):
                layers.append(registry.create_pool(pool, kernel_size=3, stride=2, padding=1,
                                                   dim=2, channels=c))
            elif variant == "all":
                conv(c, 3, stride=2)
            if dropout:
                layers.append(nn.Dropout(0.5))
        conv(c2, 3, padding=0)  # valid: 8×8 → 6×6
        conv(c2, 1)
        layers.append(nn.Conv2d(cin, num_classes, 1))
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # global averaging over the final (6×6 at 32×32 input) map; softmax is in the loss
        return self.features(x).mean((2, 3))


def allcnn(model: str = "c", variant: str = "all", num_classes: int = 10, in_chans: int = 3,
           width: float = 1.0, pool: Any = None, bn: bool = False, final_relu: bool = True,
           dropout: bool = True) -> nn.Module:
    """Any of the 12 networks of Springenberg et al. Tables 1-2 by ``model`` (a/b/c) and
    ``variant`` (base/strided/convpool/all)."""
    return AllCNN(model, variant, num_classes, in_chans, width, pool, bn, final_relu, dropout)


_TITLE = {"base": "Model {M}", "strided": "Strided-CNN-{M}", "convpool": "ConvPool-CNN-{M}",
          "all": "All-CNN-{M}"}
CANONICAL = {"base": "allcnn_model_{m}", "strided": "strided_cnn_{m}",
             "convpool": "convpool_cnn_{m}", "all": "all_cnn_{m}"}


def _named(model: str, variant: str):
    def factory(num_classes: int = 10, in_chans: int = 3, width: float = 1.0,
                pool: Any = None, bn: bool = False, final_relu: bool = True,
                dropout: bool = True) -> nn.Module:
        return AllCNN(model, variant, num_classes, in_chans, width, pool, bn, final_relu,
                      dropout)

    factory.__name__ = CANONICAL[variant].format(m=model)
    table = "Table 1" if variant == "base" else "Table 2 / Sec. 3.1"
    factory.__doc__ = (f"{_TITLE[variant].format(M=model.upper())} (Springenberg et al. 2015, "
                       f"{table}); see :class:`AllCNN`.")
    return factory


allcnn_model_a = _named("a", "base")
strided_cnn_a = _named("a", "strided")
convpool_cnn_a = _named("a", "convpool")
all_cnn_a = _named("a", "all")
allcnn_model_b = _named("b", "base")
strided_cnn_b = _named("b", "strided")
convpool_cnn_b = _named("b", "convpool")
all_cnn_b = _named("b", "all")
allcnn_model_c = _named("c", "base")
strided_cnn_c = _named("c", "strided")
convpool_cnn_c = _named("c", "convpool")
all_cnn_c = _named("c", "all")
