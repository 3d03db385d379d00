"""PoolSkip (Sun et al., AAAI 2025) and the other shortcut ops."""

from __future__ import annotations

import pytest
import torch

import registry
from registry.pools.poolskip import PoolSkip


@pytest.mark.parametrize("s", [2, 4])
@pytest.mark.parametrize("hw", [(8, 8), (7, 7), (9, 6), (5, 11), (3, 3), (1, 1)])
def test_shape_preserved(s, hw):
    m = registry.create_pool("poolskip", channels=3, pool_size=s)
    x = torch.randn(2, 3, *hw)
    assert m(x).shape == x.shape


@pytest.mark.parametrize("dim", [1, 3])
def test_other_dims(dim):
    m = PoolSkip(4, 2, dim=dim)
    x = torch.randn(2, 4, *([5] * dim))
    assert m(x).shape == x.shape


@pytest.mark.parametrize("s", [2, 4])
def test_zero_conv_is_identity(s):
    m = registry.create_pool("poolskip", channels=4, pool_size=s)
    with torch.no_grad():
        m.conv.weight.zero_()
        m.conv.bias.zero_()
    x = torch.randn(2, 4, 9, 10)
    torch.testing.assert_close(m(x), x, rtol=0, atol=0)


def test_hand_computed_4x4():
    x = torch.tensor([[1.0, 5, 2, 0],
                      [3.0, 4, 8, 1],
                      [0.0, 2, 6, 7],
                      [9.0, 1, 3, 2]]).view(1, 1, 4, 4)
    m = PoolSkip(1, 2)
    with torch.no_grad():
        m.conv.weight.fill_(1.0)  # 3x3 box sum of the unpooled map
        m.conv.bias.fill_(0.5)
    # window maxima: 5 @ (0,1), 8 @ (1,2), 9 @ (3,0), 7 @ (2,3); the unpooled map keeps only
    # them, the box sum counts those within the 3x3 neighbourhood, then + x + 0.5
    expected = torch.tensor([[6.5, 18.5, 15.5, 8.5],
                             [8.5, 17.5, 28.5, 16.5],
                             [9.5, 19.5, 21.5, 22.5],
                             [18.5, 10.5, 10.5, 9.5]]).view(1, 1, 4, 4)
    torch.testing.assert_close(m(x), expected)
    # unpooled map itself
    u = torch.zeros(4, 4)
    u[0, 1], u[1, 2], u[3, 0], u[2, 3] = 5, 8, 9, 7
    torch.testing.assert_close(m.unpooled(x).view(4, 4), u)
    # s = 4: one window, its max 9 at (3,0); identity conv tap -> x + unpooled
    m4 = PoolSkip(1, 4)
    with torch.no_grad():
        m4.conv.weight.zero_()
        m4.conv.weight[0, 0, 1, 1] = 1.0
        m4.conv.bias.zero_()
    e4 = x.clone()
    e4[0, 0, 3, 0] = 18.0
    torch.testing.assert_close(m4(x), e4)


def test_odd_border_window_keeps_its_max():
    # 3x3 with s=2: the right column / bottom row form partial windows (ceil mode)
    x = torch.arange(9.0).view(1, 1, 3, 3)
    u = PoolSkip(1, 2).unpooled(x).view(3, 3)
    expected = torch.tensor([[0.0, 0, 0], [0, 4, 5], [0, 7, 8]])
    torch.testing.assert_close(u, expected)


def test_gradient_reaches_non_max_only_through_identity():
    m = PoolSkip(2, 2)
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert m.conv.weight.grad is not None and m.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["poolskip", "identity", "residual"])
def test_skip_ops_shape_and_grad(name):
    m = registry.create_pool(name, channels=3, pool_size=2)
    x = torch.randn(2, 3, 7, 6, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_residual_is_x_plus_conv():
    m = registry.create_pool("residual", channels=2)
    x = torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(m(x), x + m.conv(x))


def test_skip_kind_registered():
    kinds = {e.name: e.meta.get("kind") for e in registry.POOLS}
    for name in ("poolskip", "identity", "residual"):
        assert kinds[name] == "skip"
