"""``substitute_pool``: after substitution no original pooling layer is left where the SoftPool
paper substitutes, and nothing else changed (same modules, same state-dict shapes, same
parameter count for parameter-free pools, same output shapes; and substituting a pool by
itself with ``geometry="same"`` gives bit-identical outputs)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import registry
from registry.models.imagenet import ARCHS
from registry.models.info import count_params
from registry.models.substitute import family_of, substitute_pool

POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool3d, nn.AvgPool3d)


pytestmark = pytest.mark.usefixtures("one_thread")


def _modules_outside(model: nn.Module, sites: list[str]) -> dict[str, str]:
    """name → type of every module not at or under a substituted site."""
    return {n: type(m).__name__ for n, m in model.named_modules()
            if not any(n == s or n.startswith(s + ".") for s in sites)}


def _shapes(model: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_imagenet_paper_substitution(arch: str) -> None:
    before = registry.create_model(arch, num_classes=10)
    after = substitute_pool(copy.deepcopy(before), "softpool")
    sites = after.pool_substitution["sites"]
    fam = family_of(before)
    # where the paper substitutes: the stem max pool (ResNet/ResNeXt/WRN and DenseNet)
    assert sites == (["features.pool0"] if fam == "densenet" else ["maxpool"])
    for s in sites:
        assert type(after.get_submodule(s)).__name__ == "SoftPool2d"
    assert not any(isinstance(m, nn.MaxPool2d) for m in after.modules())
    if fam == "densenet":  # the authors' code keeps the transition average pools
        trans = [m for n, m in after.named_modules() if n.endswith(".pool") and "transition" in n]
        assert len(trans) == 3 and all(isinstance(m, nn.AvgPool2d) for m in trans)
    # nothing else changed
    assert _modules_outside(before, sites) == _modules_outside(after, sites)
    assert _shapes(before) == _shapes(after)
    assert count_params(before) == count_params(after)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert before.eval()(x).shape == after.eval()(x).shape


def test_densenet_all_replaces_transitions_too() -> None:
    m = registry.create_model("densenet121", pool="softpool", where="all", num_classes=10)
    assert len(m.pool_substitution["sites"]) == 4
    assert not any(isinstance(x, POOL_TYPES) for x in m.modules())
    t = registry.create_model("densenet121", pool="max", where="transitions")
    assert isinstance(t.features.pool0, nn.MaxPool2d)  # stem untouched
    assert t.pool_substitution["sites"] == [f"features.transition{i}.pool" for i in (1, 2, 3)]
    assert isinstance(t.features.transition2.pool, nn.MaxPool2d)


@pytest.mark.parametrize("arch", ["resnet18", "densenet121"])
def test_self_substitution_is_identity(arch: str) -> None:
    """Replacing each pool by its own kind and geometry changes nothing at all."""
    torch.manual_seed(0)
    before = registry.create_model(arch, num_classes=10).eval()
    from registry.pools.classic import avg_pool, max_pool  # callables: forced replacement

    after = substitute_pool(copy.deepcopy(before), max_pool, where="stem", geometry="same")
    assert after.pool_substitution["sites"]
    if arch.startswith("densenet"):
        substitute_pool(after, avg_pool, where="transitions", geometry="same")
        assert len(after.pool_substitution["sites"]) == 3
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(before(x), after(x))


def test_learned_pool_adds_only_its_parameters() -> None:
    before = registry.create_model("resnet18", num_classes=10)
    after = substitute_pool(copy.deepcopy(before), "strided_conv")
    new = after.maxpool
    assert count_params(after) == count_params(before) + count_params(new) > count_params(before)
    with torch.no_grad():
        assert after(torch.randn(1, 3, 64, 64)).shape == (1, 10)


@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_video_stem_substitution(arch: str) -> None:
    before = registry.create_model(arch, num_classes=7)
    after = registry.create_model(f"{arch}_softpool", num_classes=7)
    assert after.pool_substitution["sites"] == ["stem.0"]
    # the stem conv no longer downsamples; the pool does, right after conv-BN-ReLU
    assert tuple(after.stem[0].stride) == (1, 1, 1)
    assert [type(m).__name__ for m in after.stem][:4] == ["Conv3d", "BatchNorm3d", "ReLU",
                                                         "SoftPool3d"]
    assert after.stem[3].kernel_size == (1, 2, 2) and after.stem[3].stride == (1, 2, 2)
    assert not any(isinstance(m, nn.Conv3d) and tuple(m.stride)[1:] == (2, 2)
                   for m in after.stem)
    # nothing else changed
    assert count_params(before) == count_params(after)
    assert {k for k in _shapes(before) if not k.startswith("stem.")} == \
           {k for k in _shapes(after) if not k.startswith("stem.")}
    assert [s for k, s in _shapes(before).items() if not k.startswith("stem.")] == \
           [s for k, s in _shapes(after).items() if not k.startswith("stem.")]
    assert _modules_outside(before, ["stem"]) == _modules_outside(after, ["stem"])
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        fb = before.eval().stem(x)
        fa = after.eval().stem(x)
    assert fb.shape == fa.shape


def test_generic_models_need_where_all() -> None:
    m = registry.create_model("test_cnn")
    with pytest.raises(ValueError, match="no paper rule"):
        substitute_pool(m, "softpool")
    substitute_pool(m, "softpool", where="all")
    assert len(m.pool_substitution["sites"]) == 2
    assert not any(isinstance(x, POOL_TYPES) for x in m.modules())
    v = registry.create_model("test_video")
    substitute_pool(v, "avg", where="all")
    assert sum(isinstance(x, nn.AvgPool3d) for x in v.modules()) == 2


def test_where_is_checked() -> None:
    with pytest.raises(ValueError, match="no transition pools"):
        substitute_pool(registry.create_model("resnet18"), "softpool", where="transitions")
    with pytest.raises(ValueError, match="where must be"):
        substitute_pool(registry.create_model("resnet18"), "softpool", where="everywhere")


def test_allcnn_and_s3net_pool_kwarg() -> None:
    """Families built with ``pool=`` take any registered pool directly."""
    m = registry.create_model("allcnn_model_c", pool="softpool")
    assert sum(type(x).__name__ == "SoftPool2d" for x in m.modules()) == 2
    s = registry.create_model("s3net_k12_d40", pool="softpool")
    assert sum(type(x).__name__ == "SoftPool2d" for x in s.modules()) == 2
    assert count_params(s) == count_params(registry.create_model("s3net_k12_d40"))
    with torch.no_grad():
        assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_max_baseline_is_the_original_network() -> None:
    """``pool="max"`` keeps a ResNet's 3×3/2 stem max pool: the SoftPool claim's baseline arm
    is the original network; ``"original"`` (TOML has no null) does the same everywhere."""
    torch.manual_seed(0)
    orig = registry.create_model("resnet18", num_classes=10).eval()
    for pool in ("max", "maxpool", "original"):
        torch.manual_seed(0)
        m = registry.create_model("resnet18", num_classes=10, pool=pool).eval()
        assert isinstance(m.maxpool, nn.MaxPool2d) and m.maxpool.kernel_size == 3
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(orig(x), m(x))
    m = registry.create_model("resnet18", pool="max")
    assert m.pool_substitution["kept"] == ["maxpool"] and m.pool_substitution["sites"] == []
    d = registry.create_model("densenet121", pool="avg", where="all")
    assert d.pool_substitution["kept"] == [f"features.transition{i}.pool" for i in (1, 2, 3)]
    assert isinstance(d.features.pool0, nn.AvgPool2d)  # the max stem pool was replaced
    v = registry.create_model("r3d_18", pool="original")
    assert tuple(v.stem[0].stride) == (1, 2, 2)
    forced = substitute_pool(registry.create_model("resnet18"), registry.pools.classic.max_pool)
    assert forced.maxpool.kernel_size == 2
