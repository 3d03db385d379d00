"""The networks behind the SoftPool claim families: C3D (video) and VGG16-BN (pooling-method
comparison) with every registered downsampling pool, the ImageNet models at reduced width
through ``substitute_pool``, and the video claims' smoke tier run through train_eval."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import registry
from registry.models.imagenet import width_kwargs
from suite.claims import load_claims
from suite.plan import plan_claim
from suite.specs import TaskContext

pytestmark = pytest.mark.usefixtures("one_thread")
DOWNSAMPLING = [e.name for e in registry.POOLS if e.meta.get("kind") == "pool"]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _step(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.train()
    y = model(x)
    y.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.parameters()), "a parameter got no (finite) gradient"
    return y


@pytest.mark.parametrize("pool", DOWNSAMPLING)
def test_c3d_with_each_pool(pool: str) -> None:
    torch.manual_seed(0)
    m = registry.create_model("c3d_small", num_classes=7, width=0.0625, pool=pool)
    y = _step(m, torch.randn(2, 3, 8, 32, 32))
    assert y.shape == (2, 7)
    pools = [mod for mod in m.features if not isinstance(
        mod, (torch.nn.Conv3d, torch.nn.BatchNorm3d, torch.nn.ReLU))]
    assert len(pools) == 5  # C3D's five pooling positions, all swapped


@pytest.mark.parametrize("pool", DOWNSAMPLING)
def test_vgg16_bn_with_each_pool(pool: str) -> None:
    torch.manual_seed(0)
    m = registry.create_model("cifar_vgg16_bn", num_classes=10, width=0.0625, pool=pool)
    assert _step(m, torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    learned_in_pool = pool in ("strided_conv", "pixel_unshuffle", "lip")
    assert len(convs) == 13 + (5 if learned_in_pool else 0)  # VGG16: 13 convs


@pytest.mark.parametrize("arch,sites", [("resnet18", ["maxpool"]),
                                        ("densenet121", ["features.pool0"]),
                                        ("resnext50_32x4d", ["maxpool"])])
def test_imagenet_families_at_quarter_width(arch: str, sites: list[str]) -> None:
    full = registry.create_model(arch, num_classes=10, pool="softpool")
    small = registry.create_model(arch, num_classes=10, width=0.25, pool="softpool")
    assert small.pool_substitution["sites"] == sites == full.pool_substitution["sites"]
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small < sum(p.numel() for p in full.parameters()) / 8
    assert _step(small, torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_width_kwargs() -> None:
    assert width_kwargs("resnet18", 1.0) == {}
    assert width_kwargs("resnet50", 0.25) == {"channels": (16, 32, 64, 128)}
    assert width_kwargs("densenet161", 0.25) == {"growth_rate": 12}
    with pytest.raises(ValueError, match="width must be positive"):
        width_kwargs("resnet18", 0.0)


@pytest.mark.skipif(not FMNIST.is_file(), reason="dataset-fashion-mnist missing")
@pytest.mark.parametrize("claim_id", ["softpool/ucf101/r3d_18", "softpool/video/c3d-vs-avg"])
def test_video_claims_smoke_tier_runs(claim_id: str, repo_root) -> None:
    """The smoke tier of the video claims: C3D with SoftPool3d and with max3d / avg3d in the
    same positions, one epoch on a few moving_fashion clips, through train_eval."""
    from tasks.train_eval import run

    _, claims = load_claims(repo_root / "tasks.toml")
    claim = next(c for c in claims if c.id == claim_id)
    planned = plan_claim(claim, "smoke", seeds=(0,))
    pools = {r.arm: r.model_args["pool"] for r in planned.runs}
    assert pools["treatment"] == "softpool" and pools["baseline"] in ("max", "avg")
    for spec in planned.runs:
        assert spec.model == "c3d_small" and spec.dataset == "moving_fashion"
        ctx = TaskContext(device="cpu")
        res = run(spec, ctx)
        assert 0.0 <= res.metrics["top1"] <= 100.0 and res.metrics["epochs"] == 1.0
        if spec.arm == "treatment":
            assert ctx.provenance["pool_paths"]["SoftPool3d"] in ("fused_cpu", "reference")
