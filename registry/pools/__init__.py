"""Pooling and shortcut operators, by name: ``registry.create_pool(name, **kwargs)``.

Two kinds, with fixed keyword conventions so model code can swap them by name:

* **downsampling pools** — ``create_pool(name, kernel_size=2, stride=None, padding=0,
  ceil_mode=False, dim=2, channels=None)``: ``dim`` picks 1D/2D/3D where supported;
  ``channels`` is needed by learned pools (strided conv, LIP, pixel-unshuffle; meta
  ``needs_channels=True``) and ignored by the others. Output shapes follow torch's
  max/avg pooling arithmetic. Extra keywords: ``lp`` takes ``p=``, ``softpool`` takes
  ``path=`` (see :mod:`registry.pools.softpool`), learned convs take ``bias=``.
* **shortcut ops** — ``create_pool(name, channels=C, pool_size=2)``: shape-preserving
  modules placed after a conv (``poolskip``, ``identity``, ``residual`` and PoolSkip's
  ablation arms ``pool_skip_noconv`` / ``pool_conv_noskip``).

Entries are lazy (``"module:attr"``); the family modules import torch.

SoftPool runs one of three implementations (Triton on CUDA, a fused C kernel on CPU, plain
torch elsewhere). Record which in run provenance with
``registry.pools.softpool.softpool_path(device)`` (what a tensor on ``device`` would use),
``registry.pools.softpool.last_path()`` (what the last call used) or a SoftPool module's
``.path`` attribute; ``POOLREPRO_SOFTPOOL_PATH=reference|fused_cpu|triton`` forces one.
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
_R("lp", "registry.pools.lp:lp", aliases=("lp_pool", "power_average", "pow_avg", "l2"),
   help="Lp / power-average pooling (sum |x|^p)^(1/p), Sermanet et al. 2012, p=2", kind="pool")
_R("stochastic", "registry.pools.stochastic:stochastic", aliases=("stochastic_pool",),
   help="stochastic pooling, Zeiler & Fergus ICLR 2013 (sample / prob.-weight)",
   kind="pool")
_R("mixed", "registry.pools.mixed:mixed", aliases=("mixed_pool", "mix"),
   help="mixed max-average pooling, Lee et al. AISTATS 2016 (learned a per layer)",
   kind="pool", learned=True)
_R("gated", "registry.pools.mixed:gated", aliases=("gated_pool", "gate"),
   help="gated max-average pooling, Lee et al. AISTATS 2016 (learned mask)",
   kind="pool", learned=True)
_R("lip", "registry.pools.lip:lip", aliases=("lip_pool",),
   help="local importance-based pooling, Gao et al. ICCV 2019 (needs channels)",
   kind="pool", learned=True, needs_channels=True)
_R("strided_conv", "registry.pools.learned:strided_conv",
   aliases=("strided", "conv", "allconv", "all_conv"),
   help="learned strided conv C->C in place of the pool, Springenberg et al. ICLR 2015",
   kind="pool", learned=True, needs_channels=True)
_R("pixel_unshuffle", "registry.pools.learned:pixel_unshuffle",
   aliases=("space_to_depth", "unshuffle"),
   help="pixel-unshuffle by the stride + 1x1 conv C*s^d->C (needs channels)",
   kind="pool", learned=True, needs_channels=True)
# shortcut ops
_R("poolskip", "registry.pools.poolskip:pool_skip", aliases=("pool_skip",),
   help="PoolSkip, Sun et al. AAAI 2025: x + Conv3x3(MaxUnpool(MaxPool(x)))", kind="skip")
_R("pool_skip_noconv", "registry.pools.poolskip:pool_skip_noconv",
   aliases=("pool_skip_only", "poolskip_noconv"),
   help="x + MaxUnpool(MaxPool(x)): PoolSkip without its conv (Sun et al. Table 4 ablation)",
   kind="skip")
_R("pool_conv_noskip", "registry.pools.poolskip:pool_conv_noskip",
   aliases=("pool_conv_only", "poolskip_noskip"),
   help="Conv3x3(MaxUnpool(MaxPool(x))): PoolSkip without its identity path (Table 4 ablation)",
   kind="skip")
_R("identity", "registry.pools.classic:identity", aliases=("none",),
   help="no-op shortcut op (shape preserving)", kind="skip")
_R("residual", "registry.pools.poolskip:residual", aliases=("res", "residual_conv"),
   help="residual shortcut x + Conv3x3(x), He et al. CVPR 2016 Eq. 1 (PoolSkip ablation)",
   kind="skip")
