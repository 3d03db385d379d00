"""Every registered pool: output shapes (torch's pooling arithmetic), gradient flow, and the
defining formula of each family (SoftPool has its own file, test_pools_softpool.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import registry

POOL_NAMES = [e.name for e in registry.POOLS if e.meta.get("kind") == "pool"]
SKIP_NAMES = [e.name for e in registry.POOLS if e.meta.get("kind") == "skip"]
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
SIZES = {1: (11,), 2: (7, 10), 3: (5, 6, 7)}
CONFIGS = [  # kernel_size, stride, padding, ceil_mode
    (2, None, 0, False),
    (3, 2, 1, False),
    (3, 2, 1, True),
    (2, 2, 0, True),
    (3, 1, 1, False),
]


def test_registry_kinds_and_laziness():
    assert {"max", "avg", "softpool", "lp", "stochastic", "mixed", "gated", "lip",
            "strided_conv", "pixel_unshuffle"} <= set(POOL_NAMES)
    assert {"poolskip", "identity", "residual"} <= set(SKIP_NAMES)
    for e in registry.POOLS:
        assert e.meta.get("kind") in ("pool", "skip"), e.name
        assert isinstance(e.target, str) and ":" in e.target, e.name
        assert e.help, e.name
    code = "import sys, registry; assert 'torch' not in sys.modules; print(len(registry.POOLS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(registry.__path__[0] + "/.."))
    assert out.returncode == 0, out.stderr


def test_unknown_pool_suggests():
    with pytest.raises(KeyError, match="softpool"):
        registry.create_pool("sofpool")


@pytest.mark.parametrize("name", POOL_NAMES)
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "k{}s{}p{}{}".format(*c))
def test_shape_and_gradient(name, dim, cfg):
    k, s, p, ceil = cfg
    torch.manual_seed(0)
    m = registry.create_pool(name, kernel_size=k, stride=s, padding=p, ceil_mode=ceil, dim=dim,
                             channels=3)
    x = torch.randn(2, 3, *SIZES[dim], requires_grad=True)
    y = m(x)
    assert y.shape == _MAX[dim](x, k, s, p, ceil_mode=ceil).shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    for n, prm in m.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), n


@pytest.mark.parametrize("name", POOL_NAMES)
def test_tuple_args_unbatched_and_eval(name):
    m = registry.create_pool(name, kernel_size=(1, 2, 2), stride=(1, 2, 2), dim=3, channels=4)
    x = torch.randn(2, 4, 3, 6, 5)
    assert m(x).shape == (2, 4, 3, 3, 2)
    m2 = registry.create_pool(name, kernel_size=2, dim=2, channels=4).eval()
    with torch.no_grad():
        assert m2(torch.randn(4, 6, 6)).shape == (4, 3, 3)  # unbatched (C, H, W)


@pytest.mark.parametrize("name", POOL_NAMES)
def test_half_precision_runs(name):
    m = registry.create_pool(name, kernel_size=2, dim=2, channels=2).to(torch.bfloat16)
    x = torch.randn(1, 2, 6, 6, dtype=torch.bfloat16)
    y = m(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


# ----------------------------------------------------------------------------- families


def test_max_avg_are_torch():
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(registry.create_pool("max", kernel_size=3, stride=2)(x),
                               F.max_pool2d(x, 3, 2))
    torch.testing.assert_close(registry.create_pool("avg")(x), F.avg_pool2d(x, 2))


def test_lp_matches_definition_and_torch():
    x = torch.randn(2, 3, 9, 8)
    m = registry.create_pool("lp", kernel_size=3, stride=2, padding=1, p=3.0)
    xp = F.pad(x.abs() ** 3, (1, 1, 1, 1))  # zero padding adds nothing to the sum
    expected = F.avg_pool2d(xp, 3, 2, divisor_override=1) ** (1 / 3)
    torch.testing.assert_close(m(x), expected)
    pos = x.abs()
    torch.testing.assert_close(registry.create_pool("lp")(pos), F.lp_pool2d(pos, 2, 2))


def test_lp_zero_window_gradient_finite():
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    registry.create_pool("lp")(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_stochastic_eval_is_probability_weighting():
    m = registry.create_pool("stochastic", kernel_size=2).eval()
    a = torch.rand(2, 3, 6, 6)
    win = a.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 3, 3, 3, 4)
    expected = (win * win).sum(-1) / win.sum(-1)
    torch.testing.assert_close(m(a), expected)


def test_stochastic_train_samples_window_members_with_right_frequencies():
    m = registry.create_pool("stochastic", kernel_size=2).train()
    x = torch.tensor([1.0, 3.0, 0.0, -2.0]).view(1, 1, 2, 2).expand(4000, 1, 2, 2)
    torch.manual_seed(0)
    y = m(x).flatten()
    assert set(y.unique().tolist()) <= {1.0, 3.0}  # zero/negative taps have probability 0
    frac3 = (y == 3.0).float().mean().item()
    assert abs(frac3 - 0.75) < 0.03
    torch.manual_seed(0)
    torch.testing.assert_close(m(x).flatten(), y)  # reproducible under the global seed


def test_mixed_and_gated_start_at_the_even_mix():
    x = torch.randn(2, 3, 8, 8)
    even = 0.5 * (F.max_pool2d(x, 2) + F.avg_pool2d(x, 2))
    torch.testing.assert_close(registry.create_pool("mixed")(x), even)
    torch.testing.assert_close(registry.create_pool("gated")(x), even)


def test_gated_mask_sees_the_window():
    g = registry.create_pool("gated", kernel_size=2)
    with torch.no_grad():
        g.mask.fill_(100.0)  # positive windows: gate -> 1 (max); negative: gate -> 0 (avg)
    x = torch.cat([torch.rand(1, 1, 2, 2) + 1, -torch.rand(1, 1, 2, 2) - 1], dim=-1)
    y = g(x).flatten()
    torch.testing.assert_close(y[0], x[..., :2].max())
    torch.testing.assert_close(y[1], x[..., 2:].mean())


def test_lip_with_constant_importance_is_average():
    m = registry.create_pool("lip", kernel_size=2, channels=3)
    with torch.no_grad():
        m.logit[0].weight.zero_()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(m(x), F.avg_pool2d(x, 2))


def test_strided_conv_is_a_conv_with_the_pool_arguments():
    m = registry.create_pool("strided_conv", kernel_size=3, stride=2, padding=1, channels=4)
    x = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(m(x), F.conv2d(x, m.conv.weight, m.conv.bias, 2, 1))
    assert m.conv.weight.shape == (4, 4, 3, 3)


def test_pixel_unshuffle_is_space_to_depth_then_1x1():
    m = registry.create_pool("pixel_unshuffle", kernel_size=2, channels=3)
    x = torch.randn(2, 3, 8, 6)
    expected = F.conv2d(F.pixel_unshuffle(x, 2), m.proj.weight, m.proj.bias)
    torch.testing.assert_close(m(x), expected)
