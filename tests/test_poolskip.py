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


# -- Table 4 ablation arms -----------------------------------------------------------------
_X44 = torch.tensor([[1.0, 5, 2, 0],
                     [3.0, 4, 8, 1],
                     [0.0, 2, 6, 7],
                     [9.0, 1, 3, 2]]).view(1, 1, 4, 4)
_U44 = torch.zeros(1, 1, 4, 4)  # window maxima 5, 8, 9, 7 in place (see test_hand_computed_4x4)
_U44[0, 0, 0, 1], _U44[0, 0, 1, 2], _U44[0, 0, 3, 0], _U44[0, 0, 2, 3] = 5, 8, 9, 7


def test_pool_skip_noconv_is_x_plus_unpooled_and_has_no_parameters():
    m = registry.create_pool("pool_skip_noconv", channels=1, pool_size=2)
    torch.testing.assert_close(m(_X44), _X44 + _U44)
    assert sum(p.numel() for p in m.parameters()) == 0


def test_pool_conv_noskip_drops_the_identity_path():
    m = registry.create_pool("pool_conv_noskip", channels=1, pool_size=2)
    with torch.no_grad():  # identity tap: the output is the unpooled map, x is gone
        m.conv.weight.zero_()
        m.conv.weight[0, 0, 1, 1] = 1.0
        m.conv.bias.zero_()
    torch.testing.assert_close(m(_X44), _U44)
    full = registry.create_pool("poolskip", channels=1, pool_size=2)
    full.load_state_dict(m.state_dict())
    torch.testing.assert_close(full(_X44) - _X44, m(_X44))  # Pool Skip = this + x


@pytest.mark.parametrize("name", ["poolskip", "residual", "pool_skip_noconv", "pool_conv_noskip"])
def test_skip_ops_are_marked_for_the_singularity_analysis(name):
    assert registry.create_pool(name, channels=2).is_skip_op is True


@pytest.mark.parametrize("net", ["cifar_vgg16", "cifar_mobilenet", "cifar_googlenet"])
def test_table1_nets_put_the_op_after_every_conv_before_its_bn(net):
    """Sun et al.: Pool Skip "after the convolutional layer, before ... batch normalization",
    in every conv layer (Table 1)."""
    m = registry.create_model(f"{net}_poolskip", width=0.125)
    convs = [mod for mod in m.modules() if type(mod).__name__ == "Conv2d"]
    units = [mod for mod in m.modules() if isinstance(mod, torch.nn.Sequential)
             and list(dict(mod.named_children())) [:3] == ["conv", "skip", "bn"]]
    ps = [u.skip for u in units]
    assert len(units) == len(convs) - len(ps)  # every non-Pool-Skip conv sits in a unit
    assert all(type(p).__name__ == "PoolSkip" and p.pool_size == 2 for p in ps)
    assert all(u.skip.channels == u.conv.out_channels == u.bn.num_features for u in units)
