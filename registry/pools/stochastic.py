"""Stochastic pooling — Zeiler & Fergus, *Stochastic Pooling for Regularization of Deep
Convolutional Neural Networks*, ICLR 2013, Sec. 3.

Per window ``R`` of non-negative activations::

    p_i = a_i / sum_{k in R} a_k
    train:  y = a_l,  l ~ Multinomial(p_1, ..., p_|R|)
    eval:   y = sum_{i in R} p_i a_i    (probabilistic weighting at test time)

The paper applies it after a ReLU; here the probabilities use ``max(a, 0)`` so that negative
inputs get probability 0 (an all-non-positive window outputs 0 at eval and its first tap's
value clamped at 0 in training — both equal to the limit of these formulas). Padded taps have
probability 0. Sampling draws from torch's global generator (seed it for reproducibility);
the gradient flows to the sampled tap (train) or through Eq. 5 (eval).
"""

from __future__ import annotations

import torch
from torch import nn

from registry.pools._windows import as_planes, geometry, to3, unfold


def stochastic_pool(x: torch.Tensor, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                    dim: int = 2, training: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic pooling (Zeiler & Fergus, ICLR 2013, Sec. 3); shapes as torch's max pooling."""
    k, s, p, out = geometry(x.shape, dim, kernel_size, stride, padding, ceil_mode)
    win = unfold(as_planes(x, dim).clamp_min(0), to3(k, 1), to3(s, 1), to3(p, 0),
                 to3(out, 1), value=0.0)
    total = win.sum(-1, keepdim=True)
    if training:
        # inverse-CDF sampling: the first tap whose cumulative mass exceeds u * total
        u = torch.rand(total.shape, device=x.device, dtype=total.dtype, generator=generator)
        cdf = win.detach().cumsum(-1)
        idx = (cdf <= u * total.detach()).sum(-1, keepdim=True)
        idx = idx.clamp_max(win.shape[-1] - 1)
        y = win.gather(-1, idx).squeeze(-1)
    else:
        y = (win * win).sum(-1) / total.squeeze(-1).clamp_min(torch.finfo(win.dtype).tiny)
    return y.reshape(*x.shape[:-dim], *out)


class StochasticPool(nn.Module):
    """Module form of :func:`stochastic_pool`: samples in ``train()`` mode, probability-weights
    in ``eval()`` mode (Zeiler & Fergus, ICLR 2013)."""

    def __init__(self, kernel_size=2, stride=None, padding=0, ceil_mode=False, dim: int = 2):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.dim = ceil_mode, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                               self.dim, training=self.training)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, dim={self.dim}")


def stochastic(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2,
               channels=None):
    """Registry factory: ``create_pool("stochastic", kernel_size=2)``."""
    return StochasticPool(kernel_size, stride, padding, ceil_mode, dim)
