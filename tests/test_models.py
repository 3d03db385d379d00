"""Every registered model: builds by name, runs forward + backward at batch 2 on the CPU at a
small input, gives ``[2, num_classes]`` finite logits; plus registry behaviour (aliases,
did-you-mean), ``model_info`` and the ``param_count`` task.

Inputs are kept small so the whole file runs in a couple of minutes on 2 cores: CIFAR models
at 16×16 or 32×32, ImageNet models at 64×64, video models at 8×32×32. The CIFAR ResNets with
more than ~30M parameters (ResNet-50 … 420, PoolSkip ResNet-34 and deeper: the PoolSkip 3×3
conv after a bottleneck's 1×1 expansion is C4→C4, e.g. 2048×2048×9 weights) are exercised at
``width=0.125`` here — the same depth and block code, 1/64 of the weights — and at full width
they are built on the ``meta`` device and counted (``tests/test_param_counts.py``); plain
ResNet-350/420 are also built for real at full width and run forward once on a tiny input.
"""

from __future__ import annotations

import math

import pytest
import torch

import registry
from registry._registry import UnknownNameError
from registry.models.info import build, count_params, model_info

NUM_CLASSES = 5


pytestmark = pytest.mark.usefixtures("one_thread")
ALL = registry.MODELS.names()
# CIFAR ResNets too large for a quick full-width forward/backward on 2 CPU cores
NARROW = {n for n in ALL if n.startswith("cifar_resnet") and n not in (
    "cifar_resnet18", "cifar_resnet34", "cifar_resnet18_poolskip", "cifar_resnet_thin",
    "cifar_resnet20", "cifar_resnet56", "cifar_resnet110", "cifar_resnet164",
    "cifar_resnet20_poolskip", "cifar_resnet56_poolskip", "cifar_resnet110_poolskip",
    "cifar_resnet164_poolskip")}
SLOW = {"cifar_resnet350", "cifar_resnet420", "cifar_resnet350_poolskip",
        "cifar_resnet420_poolskip", "cifar_resnet200_poolskip", "densenet161",
        "densenet161_softpool", "wide_resnet50_2", "wide_resnet50_2_softpool",
        "s3net_tiny_k108_d41", "r3d_18", "r3d_18_softpool", "r2plus1d_18",
        "r2plus1d_18_softpool"}


def small_case(name: str) -> tuple[dict, tuple[int, ...]]:
    """Constructor kwargs and input shape (batch 2) for the quick test of ``name``."""
    entry = registry.MODELS.entry(name)
    fam = entry.meta["family"]
    size = tuple(entry.meta["input_size"])
    kwargs: dict = {"num_classes": NUM_CLASSES}
    if len(size) == 4:  # video: C, T, H, W
        return kwargs, (2, size[0], 8, 32, 32)
    if fam in ("imagenet",) or size[1] >= 200:
        return kwargs, (2, size[0], 64, 64)
    if name in NARROW:
        kwargs["width"] = 0.125
        return kwargs, (2, size[0], 16, 16)
    if fam in ("allcnn", "cifar_vgg", "vgg"):  # VGG pools five times: 32 -> 1
        return kwargs, (2, size[0], 32, 32)
    return kwargs, (2, size[0], 16, 16)


def _params(name: str) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in name]


@pytest.mark.parametrize("name", _params(ALL))
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    kwargs, shape = small_case(name)
    model = registry.create_model(name, **kwargs)
    model.train()
    x = torch.randn(shape)
    y = model(x)
    assert y.shape == (2, NUM_CLASSES), (name, tuple(y.shape))
    assert torch.isfinite(y).all(), name
    y.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), f"{name}: a parameter got no gradient"
    assert all(torch.isfinite(g).all() for g in grads), f"{name}: non-finite gradient"


def test_every_model_has_meta() -> None:
    for entry in registry.MODELS:
        assert entry.meta.get("family"), entry.name
        size = entry.meta.get("input_size")
        assert isinstance(size, tuple) and len(size) in (3, 4), entry.name
        assert entry.help, entry.name


@pytest.mark.parametrize("name", ["cifar_resnet350", "cifar_resnet420"])
@pytest.mark.slow
def test_deep_plain_full_width_forward(name: str) -> None:
    """ResNet-350/420 (plain) built for real at full width, one forward on a tiny input."""
    model = registry.create_model(name, num_classes=100).eval()
    assert count_params(model) > 100e6
    with torch.no_grad():
        y = model(torch.randn(1, 3, 8, 8))
    assert y.shape == (1, 100) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["cifar_resnet350_poolskip", "cifar_resnet420_poolskip"])
def test_deep_poolskip_full_width_meta(name: str) -> None:
    """Full-width PoolSkip-350/420 (1.1B / 1.3B parameters) built on the meta device: the
    structure is complete (every block has its three PoolSkip ops) and shape-checks."""
    model = build(name, device="meta", num_classes=100)
    n_blocks = {"cifar_resnet350_poolskip": 4 + 36 + 72 + 4,
                "cifar_resnet420_poolskip": 4 + 44 + 87 + 4}[name]
    ps = [m for m in model.modules() if type(m).__name__ == "PoolSkip"]
    assert len(ps) == 3 * n_blocks
    assert {m.pool_size for m in ps} == {4}
    y = model(torch.empty(1, 3, 32, 32, device="meta"))
    assert tuple(y.shape) == (1, 100)


def test_poolskip_placement_basic_and_bottleneck() -> None:
    """PoolSkip sits after each residual-branch conv, before its BN (Sun et al., README)."""
    m = registry.create_model("cifar_resnet18_poolskip")
    blk = m.stages[1][0]
    assert type(blk.skip1).__name__ == "PoolSkip" and blk.skip1.pool_size == 2
    assert blk.skip1.channels == blk.conv1.out_channels == blk.bn1.num_features
    assert not isinstance(blk.shortcut, torch.nn.Identity)  # 1×1 conv + BN kept
    m = registry.create_model("cifar_resnet50_poolskip", width=0.125)
    blk = m.stages[0][0]
    assert [s.pool_size for s in (blk.skip1, blk.skip2, blk.skip3)] == [4, 4, 4]
    assert blk.skip3.channels == blk.conv3.out_channels
    m = registry.create_model("cifar_resnet50_poolskip", width=0.125, pool_size=2)
    assert m.stages[0][0].skip1.pool_size == 2
    plain = registry.create_model("cifar_resnet18")
    assert isinstance(plain.stages[0][0].skip1, torch.nn.Identity)


def test_thin_resnet_depths() -> None:
    for depth, block in ((20, "basic"), (32, "basic"), (29, "bottleneck")):
        m = registry.create_model("cifar_resnet_thin", depth=depth, block=block)
        n_blocks = sum(len(s) for s in m.stages)
        per = 2 if block == "basic" else 3
        assert n_blocks * per + 2 == depth
    with pytest.raises(ValueError, match="6n\\+2"):
        registry.create_model("cifar_resnet_thin", depth=21)


def test_allcnn_layers() -> None:
    """Final map is 6×6 at 32×32 input for all 12 nets; pool swap and its refusal."""
    for m in "abc":
        for v in ("base", "strided", "convpool", "all"):
            net = registry.create_model("allcnn", model=m, variant=v)
            feats = net.features[:-2]  # up to the class conv
            out = feats(torch.zeros(1, 3, 32, 32))
            assert out.shape[-2:] == (6, 6), (m, v, out.shape)
            pools = [x for x in net.modules() if isinstance(x, torch.nn.MaxPool2d)]
            assert len(pools) == (2 if v in ("base", "convpool") else 0)
            drops = [x.p for x in net.modules() if isinstance(x, torch.nn.Dropout)]
            assert drops == [0.2, 0.5, 0.5]
    net = registry.create_model("All-CNN-C")  # paper name as alias
    assert not any(isinstance(x, torch.nn.MaxPool2d) for x in net.modules())
    with pytest.raises(ValueError, match="no pooling layer"):
        registry.create_model("all_cnn_c", pool="avg")
    net = registry.create_model("allcnn_model_c", pool="avg")
    assert any(isinstance(x, torch.nn.AvgPool2d) for x in net.modules())
    net = registry.create_model("all_cnn_c", bn=True, width=0.5)
    assert any(isinstance(x, torch.nn.BatchNorm2d) for x in net.modules())
    assert net.features[1].out_channels == 48


def test_s3net_wiring() -> None:
    """S3Net layers see only the previous output; DenseNet layers see everything."""
    s3 = registry.create_model("s3net_k12_d40")
    block = s3.features[0]
    cins = [layer.body[0].num_features for layer in block.layers]
    assert cins == [24] + [12] * 11
    assert block.out_channels == 24 + 12 * 12
    dn = registry.create_model("densenet40_k12")
    cins = [layer.body[0].num_features for layer in dn.features[0].layers]
    assert cins == [16 + 12 * i for i in range(12)]
    # the sparse block output holds the input and every layer's output
    x = torch.randn(1, 24, 8, 8)
    out = block.eval()(x)
    assert torch.equal(out[:, :24], x)


def test_aliases_and_did_you_mean() -> None:
    assert registry.MODELS.resolve("All-CNN-C") == "all_cnn_c"
    assert registry.MODELS.resolve("ConvPool-CNN-B") == "convpool_cnn_b"
    assert registry.MODELS.resolve("Strided-CNN-A") == "strided_cnn_a"
    assert registry.MODELS.resolve("resnet18-poolskip") == "cifar_resnet18_poolskip"
    assert registry.MODELS.resolve("ResNet-50-PoolSkip") == "cifar_resnet50_poolskip"
    assert registry.MODELS.resolve("resnet50") == "resnet50"  # ImageNet (timm)
    assert registry.MODELS.resolve("r(2+1)d_18") == "r2plus1d_18"
    assert registry.MODELS.resolve("s3net") == "s3net_cifar"
    with pytest.raises(UnknownNameError) as e:
        registry.create_model("cifar_resnet51")
    assert "Did you mean" in str(e.value)


def test_imagenet_backend_is_timm_without_download() -> None:
    m = registry.create_model("resnet18", num_classes=3, in_chans=1)
    assert m.backend == "timm"
    assert m.conv1.in_channels == 1


@pytest.mark.parametrize("name", ["test_cnn", "all_cnn_c", "cifar_resnet18_poolskip",
                                  "s3net_k12_d40", "resnet50", "r3d_18_softpool"])
def test_model_info(name: str) -> None:
    info = model_info(name)
    size = registry.MODELS.entry(name).meta["input_size"]
    assert info["input_size"] == size
    real = count_params(registry.create_model(name))
    assert info["params"] == real
    assert info["flops"] is not None and info["flops"] > 0


def test_model_info_kwargs_and_flops_value() -> None:
    # All-CNN-C at 32×32: FLOPs of its convs, 2 per multiply-add (PyTorch's convention)
    info = model_info("all_cnn_c", num_classes=10)
    macs = (32 * 32 * (3 * 96 * 9 + 96 * 96 * 9) + 16 * 16 * 96 * 96 * 9
            + 16 * 16 * (96 * 192 * 9 + 192 * 192 * 9) + 8 * 8 * 192 * 192 * 9
            + 6 * 6 * (192 * 192 * 9 + 192 * 192 + 192 * 10))
    assert info["flops"] == 2 * macs
    assert model_info("test_cnn", in_chans=1)["input_size"] == (1, 32, 32)
    assert model_info("test_cnn", flops=False)["flops"] is None


def test_param_count_task() -> None:
    from suite.specs import RunSpec, TaskContext
    from tasks.param_count import run

    spec = RunSpec(claim_id="c", tier="smoke", arm="treatment", seed=0, task="param_count",
                   model="all_cnn_c", dataset="synthetic", model_args={"num_classes": 10})
    res = run(spec, TaskContext(device="cpu"))
    assert res.metrics["params"] == 1_369_738
    assert math.isclose(res.metrics["params_m"], 1.369738)
    assert res.metrics["flops"] > 0 and res.metrics["gflops"] == res.metrics["flops"] / 1e9
    spec = RunSpec(claim_id="c", tier="smoke", arm="treatment", seed=0, task="param_count",
                   model="s3net_k12_d40", dataset="cifar100", model_args={"num_classes": 100},
                   params={"input_size": [3, 64, 64]})
    ctx = TaskContext(device="cpu")
    res = run(spec, ctx)
    assert res.metrics["params"] == 272_836
    assert ctx.provenance["param_count"]["input_size"] == [3, 64, 64]
