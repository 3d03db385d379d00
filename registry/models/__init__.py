"""Model registry: ``registry.create_model(name, num_classes=, in_chans=, pool=, skip=)``.

One file per family (timm style). Entries are lazy (``"module:attr"``) so listing and
validating names never imports torch. Every factory takes ``num_classes`` and ``in_chans``;
families that have a pooling layer take ``pool=`` (a name from ``registry.pools`` or a
class), families with shortcut ops take ``skip=``.

Every entry carries ``family`` and ``input_size`` (``(C, H, W)``, or ``(C, T, H, W)`` for
video) meta: the default input at which ``registry.models.info.model_info`` counts FLOPs.

Families and naming (see each module's docstring for the paper and table):

* ``micro``          — ``test_cnn``, ``test_resnet``, ``test_video`` (< 50k parameters).
* ``cifar_resnet``   — PoolSkip's CIFAR ResNets ``cifar_resnet{18,…,420}[_poolskip]`` and the
  thin ``cifar_resnet{20,56,110,164}[_poolskip]`` (``cifar_resnet`` / ``cifar_resnet_thin``
  take ``depth=``). ``resnet50_poolskip`` etc. are aliases of the CIFAR PoolSkip models.
* ``cifar_vgg`` / ``cifar_mobilenet`` / ``cifar_googlenet`` — the other nets of PoolSkip's
  Table 1, ``cifar_{vgg16,mobilenet,googlenet}[_poolskip]`` (``skip=`` after every conv).
* ``allcnn``         — Springenberg et al.'s 12 nets: ``allcnn_model_{a,b,c}``,
  ``strided_cnn_*``, ``convpool_cnn_*``, ``all_cnn_*`` (``allcnn`` takes model/variant).
* ``s3net`` / ``cifar_densenet`` — S3Net (CIFAR and ImageNet forms) and its DenseNet baselines.
* ``tiny_baselines`` — S3Net's Table IV TinyImageNet baselines that timm builds
  (``mobilenetv2``, ``efficientnet_b0``, ``ghostnet``, ``se_resnet50``).
* ``imagenet``       — timm ``resnet18`` … ``wide_resnet50_2`` (plain names = ImageNet models)
  and their ``*_softpool`` versions.
* ``video``          — torchvision ``r3d_18``, ``mc3_18``, ``r2plus1d_18`` [``_softpool``].
* ``c3d`` / ``vgg``   — C3D and VGG-BN with every pool swappable (SoftPool video, pool
  comparison).
"""

from registry._registry import Registry

MODELS = Registry("model")

_R = MODELS.register
_CIFAR = (3, 32, 32)
_IMNET = (3, 224, 224)
_VIDEO = (3, 16, 112, 112)

# micro models for the smoke tier (< 50k parameters)
_R("test_cnn", "registry.models.micro:test_cnn", help="3-conv micro CNN with a swappable pool",
   family="micro", input_size=_CIFAR)
_R("test_resnet", "registry.models.micro:test_resnet",
   help="2-block micro ResNet with a swappable shortcut op", family="micro", input_size=_CIFAR)
_R("test_video", "registry.models.micro:test_video",
   help="3-conv micro 3D CNN with swappable pools, for [N,C,T,H,W] clips", family="micro",
   input_size=(3, 8, 32, 32))

# --- CIFAR ResNets with PoolSkip (Sun et al., AAAI 2025) ---------------------------------
_M = "registry.models.cifar_resnet"
_R("cifar_resnet", f"{_M}:cifar_resnet", help="PoolSkip CIFAR ResNet, depth= 18..420, skip=",
   family="cifar_resnet", input_size=_CIFAR, paper="poolskip")
_R("cifar_resnet_thin", f"{_M}:cifar_resnet_thin", aliases=("thin_resnet",),
   help="He et al. thin CIFAR ResNet, depth=6n+2 (basic) / 9n+2 (bottleneck), skip=",
   family="cifar_resnet", input_size=_CIFAR, paper="poolskip")
for _d in (18, 34, 50, 101, 152, 200, 350, 420):
    _R(f"cifar_resnet{_d}", f"{_M}:cifar_resnet{_d}", aliases=(f"cifar-resnet-{_d}",),
       help=f"CIFAR ResNet-{_d} (weiaicunzai/PoolSkip code base), plain",
       family="cifar_resnet", input_size=_CIFAR, paper="poolskip")
    _R(f"cifar_resnet{_d}_poolskip", f"{_M}:cifar_resnet{_d}_poolskip",
       aliases=(f"resnet{_d}_poolskip", f"resnet-{_d}-poolskip", f"resnet{_d}-ps"),
       help=f"CIFAR ResNet-{_d} with PoolSkip after every residual-branch conv",
       family="cifar_resnet", input_size=_CIFAR, paper="poolskip")
for _d in (20, 56, 110, 164):
    _R(f"cifar_resnet{_d}", f"{_M}:cifar_resnet{_d}", aliases=(f"resnet{_d}",),
       help=f"thin CIFAR ResNet-{_d} (16/32/64 channels, He et al. 2016)",
       family="cifar_resnet", input_size=_CIFAR, paper="poolskip")
    _R(f"cifar_resnet{_d}_poolskip", f"{_M}:cifar_resnet{_d}_poolskip",
       aliases=(f"resnet{_d}_poolskip", f"resnet-{_d}-poolskip"),
       help=f"thin CIFAR ResNet-{_d} with PoolSkip", family="cifar_resnet",
       input_size=_CIFAR, paper="poolskip")

# --- PoolSkip Table 1's other CIFAR nets (weiaicunzai/pytorch-cifar100 definitions) --------
for _fam, _net, _what in (("cifar_vgg", "vgg16", "VGG16-BN"),
                          ("cifar_mobilenet", "mobilenet", "MobileNet (v1)"),
                          ("cifar_googlenet", "googlenet", "GoogLeNet")):
    _R(f"cifar_{_net}", f"registry.models.{_fam}:cifar_{_net}",
       help=f"CIFAR {_what} of the PoolSkip code base, plain; skip= after every conv",
       family=_fam, input_size=_CIFAR, paper="poolskip")
    _R(f"cifar_{_net}_poolskip", f"registry.models.{_fam}:cifar_{_net}_poolskip",
       aliases=(f"{_net}_poolskip", f"{_net}-ps"),
       help=f"CIFAR {_what} with PoolSkip (s=2) after every conv, before its BN",
       family=_fam, input_size=_CIFAR, paper="poolskip")

# --- All-CNN (Springenberg et al., ICLR 2015 workshop, Tables 1-2) -------------------------
_M = "registry.models.allcnn"
_R("allcnn", f"{_M}:allcnn", help="All-CNN family: model=a|b|c, variant=base|strided|convpool|all",
   family="allcnn", input_size=_CIFAR, paper="allcnn")
for _m in "abc":
    _U = _m.upper()
    _R(f"allcnn_model_{_m}", f"{_M}:allcnn_model_{_m}",
       aliases=(f"allcnn_base_{_m}", f"all_cnn_model_{_m}"),
       help=f"Model {_U} (Table 1): conv + 3x3/2 max-pool base network", family="allcnn",
       input_size=_CIFAR, paper="allcnn")
    _R(f"strided_cnn_{_m}", f"{_M}:strided_cnn_{_m}", aliases=(f"allcnn_strided_{_m}",),
       help=f"Strided-CNN-{_U}: pools removed, preceding conv stride 2", family="allcnn",
       input_size=_CIFAR, paper="allcnn")
    _R(f"convpool_cnn_{_m}", f"{_M}:convpool_cnn_{_m}", aliases=(f"allcnn_convpool_{_m}",),
       help=f"ConvPool-CNN-{_U}: extra 3x3 conv before each max-pool", family="allcnn",
       input_size=_CIFAR, paper="allcnn")
    _R(f"all_cnn_{_m}", f"{_M}:all_cnn_{_m}", aliases=(f"allcnn_{_m}", f"allcnn_all_{_m}"),
       help=f"All-CNN-{_U}: each max-pool replaced by a 3x3 stride-2 conv", family="allcnn",
       input_size=_CIFAR, paper="allcnn")

# --- S3Net (Fan et al., arXiv 1811.09003) and its DenseNet baselines -----------------------
_M = "registry.models.s3net"
_R("s3net_cifar", f"{_M}:s3net_cifar", aliases=("s3net",),
   help="S3Net for CIFAR, growth_rate= depth= (authors' s3model.py)", family="s3net",
   input_size=_CIFAR, paper="s3net")
_R("s3net_imagenet", f"{_M}:s3net_imagenet",
   help="S3Net, ImageNet DenseNet-BC skeleton, growth_rate= block_config=", family="s3net",
   input_size=_IMNET, paper="s3net")
for _k, _dd in ((12, 40), (24, 40), (40, 40), (64, 40), (64, 70), (16, 22), (9, 22)):
    _R(f"s3net_k{_k}_d{_dd}", f"{_M}:s3net_k{_k}_d{_dd}", aliases=(f"s3net_{_dd}_k{_k}",),
       help=f"S3Net k={_k} depth {_dd}, CIFAR ("
            + ("Table III)" if _dd != 22 else "mini-tier arm)"), family="s3net",
       input_size=_CIFAR, paper="s3net")
_R("s3net_k96_d45", f"{_M}:s3net_k96_d45", aliases=("s3net_imagenet_k96",),
   help="S3Net k=96 depth 45, ImageNet (Table V; authors' s3net_new1)", family="s3net",
   input_size=_IMNET, paper="s3net")
_R("s3net_tiny_k96_d41", f"{_M}:s3net_tiny_k96_d41", aliases=("s3net_k96_d41",),
   help="S3Net k=96 depth 41, TinyImageNet (Table IV; code absent: S3Net B's skeleton, k=96)",
   family="s3net", input_size=_IMNET, paper="s3net")
_R("s3net_tiny_k108_d41", f"{_M}:s3net_tiny_k108_d41", aliases=("s3net_b_k108_d41", "s3net_b"),
   help="S3Net B k=108 depth 41, TinyImageNet at 224px (Table IV; authors' s3net_new)",
   family="s3net", input_size=_IMNET, paper="s3net")
_M = "registry.models.cifar_densenet"
_R("cifar_densenet", f"{_M}:cifar_densenet",
   help="DenseNet / DenseNet-BC (bc=True) for CIFAR, growth_rate= depth=",
   family="cifar_densenet", input_size=_CIFAR, paper="s3net")
for _name, _al, _h in (
        ("densenet40_k12", "densenet_k12_d40", "DenseNet k=12 depth 40 (Huang et al. Table 2)"),
        ("densenet100_k12", "densenet_k12_d100", "DenseNet k=12 depth 100"),
        ("densenet100_k24", "densenet_k24_d100", "DenseNet k=24 depth 100"),
        ("densenet_bc100_k12", "densenet_bc_k12_d100", "DenseNet-BC k=12 depth 100"),
        ("densenet22_k9", "densenet_k9_d22", "DenseNet k=9 depth 22 (mini-tier arm)")):
    _R(_name, f"{_M}:{_name}", aliases=(_al,), help=f"{_h}, CIFAR (S3Net Table III baseline)",
       family="cifar_densenet", input_size=_CIFAR, paper="s3net")

# --- S3Net Table IV baselines re-trained by the S3Net authors (timm builds) -------------
_M = "registry.models.tiny_baselines"
for _name, _al, _h in (("mobilenetv2", ("mobilenet_v2",), "MobileNetV2"),
                       ("efficientnet_b0", ("effnet_b0",), "EfficientNet-B0"),
                       ("ghostnet", ("ghost_net",), "GhostNet 1.0x"),
                       ("se_resnet50", ("seresnet50", "se_net"), "SE-ResNet-50")):
    _R(_name, f"{_M}:{_name}", aliases=_al,
       help=f"{_h} (timm, pretrained=False), S3Net Table IV TinyImageNet baseline",
       family="tiny_baselines", input_size=_IMNET, paper="s3net")

# --- ImageNet CNNs with SoftPool substitution (Stergiou et al., ICCV 2021) -----------------
_M = "registry.models.imagenet"
_IMNET_ALIASES = {
    "resnet18": ("resnet_18",), "resnet34": ("resnet_34",), "resnet50": ("resnet_50",),
    "resnet101": ("resnet_101",), "resnet152": ("resnet_152",),
    "densenet121": ("densenet_121",), "densenet161": ("densenet_161",),
    "densenet169": ("densenet_169",), "resnext50_32x4d": ("resnext50", "resnext_50"),
    "resnext101_32x4d": ("resnext101", "resnext_101"),
    "wide_resnet50_2": ("wide_resnet50", "wrn50", "wrn_50_2"),
}
for _a, _als in _IMNET_ALIASES.items():
    _R(_a, f"{_M}:{_a}", aliases=_als,
       help=f"{_a} (timm, pretrained=False); pool='softpool' substitutes the paper's pools",
       family="imagenet", input_size=_IMNET, paper="softpool")
    _R(f"{_a}_softpool", f"{_M}:{_a}_softpool",
       aliases=tuple(f"{x}_softpool" for x in _als) + (f"{_a}-sp",),
       help=f"{_a} with SoftPool in place of its paper-substituted pools",
       family="imagenet", input_size=_IMNET, paper="softpool")

# --- video 3D CNNs (torchvision) ----------------------------------------------------------
_M = "registry.models.video"
for _a, _als in (("r3d_18", ("r3d18",)), ("mc3_18", ("mc3",)),
                 ("r2plus1d_18", ("r(2+1)d_18", "r2plus1d"))):
    _R(_a, f"{_M}:{_a}", aliases=_als, help=f"torchvision {_a} video ResNet (weights=None)",
       family="video", input_size=_VIDEO, paper="softpool")
    _R(f"{_a}_softpool", f"{_M}:{_a}_softpool", aliases=tuple(f"{x}_softpool" for x in _als),
       help=f"{_a} with 3D SoftPool taking the stem's spatial downsampling",
       family="video", input_size=_VIDEO, paper="softpool")

# --- ImageNet models S3Net's Table V quotes from other works (timm) -------------------------
_M = "registry.models.timm_baselines"
for _a, _als, _h in (
        ("mobilenetv2_140", ("mobilenet_v2_1.4",), "MobileNetV2 1.4 (timm)"),
        ("regnetx_600mf", ("regnetx_006",), "RegNetX-600MF (timm regnetx_006)"),
        ("deit_tiny", ("deit_ti", "deit_tiny_patch16_224"), "DeiT-Ti, ViT-Tiny/16 (timm)")):
    _R(_a, f"{_M}:{_a}", aliases=_als, help=f"{_h}; S3Net Table V quotes it",
       family="timm_baselines", input_size=_IMNET, paper="s3net")

# --- C3D (Tran et al., ICCV 2015) with swappable 3D pools: SoftPool's video mini form ------
_M = "registry.models.c3d"
_R("c3d", f"{_M}:c3d", help="C3D (8 3x3x3 convs, 5 pools) with BN, GAP head, width=, pool=",
   family="c3d", input_size=(3, 16, 112, 112), paper="softpool")
_R("c3d_small", f"{_M}:c3d_small", help="C3D at 1/8 width for 8x64x64 clips, pool= (mini)",
   family="c3d", input_size=(3, 8, 64, 64), paper="softpool")

# --- VGG-BN for 32x32 inputs with swappable pools: SoftPool's pooling-method comparison -----
_M = "registry.models.vgg"
_R("cifar_vgg", f"{_M}:cifar_vgg", help="VGG-{11,13,16,19}-BN for 32x32, depth= width= pool=",
   family="vgg", input_size=_CIFAR, paper="softpool")
_R("cifar_vgg16_bn", f"{_M}:cifar_vgg16_bn", aliases=("vgg16_bn_cifar",),
   help="VGG16-BN for 32x32 with its five pools swappable (pool=)", family="vgg",
   input_size=_CIFAR, paper="softpool")
