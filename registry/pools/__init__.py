"""Pooling and shortcut operators, by name: ``registry.create_pool(name, **kwargs)``.

Two kinds, with fixed keyword conventions so model code can swap them by name:

* **downsampling pools** — ``create_pool(name, kernel_size=2, stride=None, padding=0,
  ceil_mode=False, dim=2, channels=None)``: ``dim`` picks 1D/2D/3D where supported;
  ``channels`` is needed by learned pools (strided conv, gated, pixel-unshuffle) and
  ignored by the others. Output shapes follow torch's max/avg pooling arithmetic.
* **shortcut ops** — ``create_pool(name, channels=C, pool_size=2)``: shape-preserving
  modules placed after a conv (``poolskip``, ``identity``, ``residual``).

Entries are lazy (``"module:attr"``); the family modules import torch.
"""

from registry._registry import Registry

POOLS = Registry("pool")

_R = POOLS.register
# downsampling pools
_R("max", "registry.pools.classic:max_pool", aliases=("maxpool", "max_pool"),
   help="max pooling (torch)", kind="pool")
_R("avg", "registry.pools.classic:avg_pool", aliases=("avgpool", "avg_pool", "mean"),
   help="average pooling (torch)", kind="pool")
_R("softpool", "registry.pools.softpool:softpool", aliases=("soft", "soft_pool"),
   help="SoftPool, Stergiou et al. ICCV 2021, Eq. 1-2", kind="pool")
# shortcut ops
_R("poolskip", "registry.pools.poolskip:pool_skip", aliases=("pool_skip",),
   help="PoolSkip, Sun et al. AAAI 2025: x + Conv3x3(MaxUnpool(MaxPool(x)))", kind="skip")
_R("identity", "registry.pools.classic:identity", aliases=("none",),
   help="no-op shortcut op (shape preserving)", kind="skip")
_R("residual", "registry.pools.poolskip:residual", aliases=("res", "residual_conv"),
   help="residual shortcut x + Conv3x3(x), He et al. CVPR 2016 Eq. 1 (PoolSkip ablation)",
   kind="skip")
