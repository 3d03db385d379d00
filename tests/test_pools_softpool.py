"""SoftPool (Stergiou et al., ICCV 2021, Eq. 1-2): the definition, stability, the analytic
backward, and agreement of its three paths (Triton under Triton's CPU interpreter)."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import registry
from registry.pools import softpool as sp
from registry.pools._windows import as_tuple, pool_output_size

CPU_PATHS = ["fused_cpu", "reference"]
FUNCS = {1: sp.soft_pool1d, 2: sp.soft_pool2d, 3: sp.soft_pool3d}
CASES = [  # dim, input shape, kernel_size, stride, padding, ceil_mode
    (1, (2, 3, 11), 3, 2, 1, False),
    (1, (2, 2, 9), 2, None, 0, True),
    (2, (2, 3, 7, 9), 2, None, 0, False),
    (2, (2, 3, 7, 9), 3, 2, 1, True),
    (2, (1, 2, 8, 8), 3, 1, 1, False),
    (2, (1, 2, 9, 7), (2, 3), (2, 1), (1, 1), True),
    (3, (1, 2, 5, 6, 7), (2, 3, 3), (1, 2, 2), (1, 1, 0), True),
    (3, (1, 2, 4, 6, 6), 2, None, 0, False),
]
IDS = [f"{c[0]}d-k{c[2]}s{c[3]}p{c[4]}{'c' if c[5] else ''}" for c in CASES]


def direct(x: torch.Tensor, dim, k, s, p, ceil) -> torch.Tensor:
    """The definition, one window at a time, in float64: padded taps are not in the window."""
    k = as_tuple(k, dim, "k")
    s = k if s is None else as_tuple(s, dim, "s")
    p = as_tuple(p, dim, "p")
    size = x.shape[-dim:]
    out = [pool_output_size(n, a, b, c, ceil) for n, a, b, c in zip(size, k, s, p, strict=True)]
    y = torch.empty(*x.shape[:-dim], *out, dtype=torch.float64)
    xd = x.double()
    for o in itertools.product(*[range(n) for n in out]):
        region = []
        for d in range(dim):
            a = o[d] * s[d] - p[d]
            region.append(slice(max(a, 0), min(a + k[d], size[d])))
        a = xd[(..., *region)].flatten(-dim)
        w = torch.exp(a - a.amax(-1, keepdim=True))
        w = w / w.sum(-1, keepdim=True)  # Eq. 1
        y[(..., *o)] = (w * a).sum(-1)  # Eq. 2
    return y


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_per_window_definition(path, case):
    dim, shape, k, s, p, ceil = case
    torch.manual_seed(1)
    x = torch.randn(shape) * 3
    y = FUNCS[dim](x, k, s, p, ceil, path=path)
    assert sp.last_path() == path
    torch.testing.assert_close(y.double(), direct(x, dim, k, s, p, ceil), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(path, case):
    dim, shape, k, s, p, ceil = case
    torch.manual_seed(2)
    x = torch.randn(1, 1, *shape[2:], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: FUNCS[dim](t, k, s, p, ceil, path=path), (x,))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_paths_agree_forward_and_backward(case):
    dim, shape, k, s, p, ceil = case
    torch.manual_seed(3)
    x = (torch.randn(shape) * 5).requires_grad_()
    g = None
    results = {}
    for path in CPU_PATHS + ["formula"]:
        x.grad = None
        if path == "formula":  # plain torch formula, gradient by autograd
            y = sp.soft_pool_formula(x, k, s, p, ceil, dim=dim)
        else:
            y = FUNCS[dim](x, k, s, p, ceil, path=path)
        g = torch.randn_like(y) if g is None else g
        y.backward(g)
        results[path] = (y.detach(), x.grad.clone())
    ref_y, ref_g = results["reference"]
    for path, (y, gx) in results.items():
        torch.testing.assert_close(y, ref_y, rtol=1e-5, atol=1e-5, msg=path)
        torch.testing.assert_close(gx, ref_g, rtol=1e-4, atol=1e-5, msg=path)


@pytest.mark.parametrize("scale", [1.0, 12.0, 30.0, 300.0])
@pytest.mark.parametrize("cfg", [(3, 2, 1), (3, 1, 1), (4, 2, 2)])
def test_fused_overlapping_windows_over_a_wide_range(scale, cfg):
    # overlapping windows whose maxima differ by far more than float32's exp range
    k, s, p = cfg
    torch.manual_seed(7)
    x = (torch.randn(2, 2, 9, 11) * scale).requires_grad_()
    y = sp.soft_pool2d(x, k, s, p, path="fused_cpu")
    torch.testing.assert_close(y.double(), direct(x.detach(), 2, k, s, p, False),
                               rtol=1e-5, atol=1e-5 * scale)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    (gr,) = torch.autograd.grad(sp.soft_pool2d(x, k, s, p, path="reference"), x, g)
    torch.testing.assert_close(gx, gr, rtol=1e-4, atol=1e-5)


# Every code path of the fused CPU kernel: plane blocks of 8 with a partial last block,
# channels-last memory (in place, and a partial channel block through scratch), interior and
# clipped border windows, unrolled (2, 3, 4, 8, 9 taps) and general window sizes, disjoint
# windows that store (with and without uncovered inputs) and overlapping ones that add.
SHAPE_CLASSES = {  # name: dim, shape, kernel_size, stride, padding, ceil_mode
    "cifar-k2": (2, (3, 10, 8, 8), 2, None, 0, False),
    "odd-k2-floor": (2, (2, 5, 7, 9), 2, None, 0, False),
    "odd-k2-ceil": (2, (2, 5, 7, 9), 2, None, 0, True),
    "stem-k3s2p1": (2, (2, 9, 11, 12), 3, 2, 1, False),
    "overlap-k3s1p1": (2, (1, 8, 6, 7), 3, 1, 1, False),
    "gap-k2s3": (2, (2, 4, 8, 8), 2, 3, 0, False),
    "late-many-channels": (2, (2, 40, 3, 3), 2, None, 0, True),
    "window-k5s2p2": (2, (1, 9, 9, 9), 5, 2, 2, True),
    "global-9x9": (2, (2, 3, 9, 9), 9, None, 0, False),
    "rect": (2, (2, 6, 9, 7), (2, 3), (2, 1), (1, 1), True),
    "1d-k2": (1, (3, 5, 16), 2, None, 0, False),
    "1d-k3s2p1": (1, (2, 9, 13), 3, 2, 1, True),
    "3d-k2": (3, (1, 10, 4, 6, 6), 2, None, 0, False),
    "3d-k3s2p1": (3, (1, 9, 5, 7, 6), 3, 2, 1, True),
}
LAYOUTS = ["contiguous", "channels_last", "strided"]


def _laid_out(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":  # (N, *spatial, C) memory, as a channels-last conv gives
        return x.movedim(1, -1).contiguous().movedim(-1, 1)
    if layout == "strided":  # every other element of a wider tensor
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1])
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(SHAPE_CLASSES))
def test_fused_matches_reference_for_every_shape_class_and_layout(name, layout, scale):
    dim, shape, k, s, p, ceil = SHAPE_CLASSES[name]
    torch.manual_seed(8)
    x0 = torch.randn(shape) * scale
    x = _laid_out(x0.clone(), layout).requires_grad_()
    assert torch.equal(x.detach(), x0) and (x.is_contiguous() == (layout == "contiguous"))
    y = FUNCS[dim](x, k, s, p, ceil, path="fused_cpu")
    assert sp.last_path() == "fused_cpu"
    xr = x0.clone().requires_grad_()
    yr = FUNCS[dim](xr, k, s, p, ceil, path="reference")
    torch.testing.assert_close(y, yr, rtol=1e-5, atol=1e-5 * scale)
    if layout == "channels_last" and shape[1] >= 8:  # read in place: output stays channels-last
        assert y.movedim(1, -1).is_contiguous()
    g = torch.randn_like(yr)
    y.backward(g)
    yr.backward(g)
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_channels_last(dtype):
    torch.manual_seed(10)
    x0 = (torch.randn(2, 16, 9, 8) * 3).to(dtype)
    x = _laid_out(x0, "channels_last").requires_grad_()
    y = sp.soft_pool2d(x, 3, 2, 1, path="fused_cpu")
    assert y.dtype == dtype and y.movedim(1, -1).is_contiguous()
    xr = x0.clone().requires_grad_()
    yr = sp.soft_pool2d(xr, 3, 2, 1, path="reference")
    torch.testing.assert_close(y, yr)
    g = torch.randn_like(yr)
    y.backward(g)
    yr.backward(g)
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad, xr.grad)


@pytest.mark.parametrize("name, spatial", [("stem-k3s2p1", (5, 6)), ("1d-k3s2p1", (9,)),
                                           ("3d-k3s2p1", (3, 4, 5)), ("late-many-channels", (3, 3))])
def test_gradcheck_float64_channels_last(name, spatial):
    dim, _, k, s, p, ceil = SHAPE_CLASSES[name]
    torch.manual_seed(9)
    x = _laid_out(torch.randn(1, 9, *spatial, dtype=torch.float64), "channels_last")
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: FUNCS[dim](t, k, s, p, ceil, path="fused_cpu"),
                                    (x,), fast_mode=True)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 1, 1)])
def test_nan_input_gives_nan_in_its_windows_only(path, k, s, p):
    x = torch.arange(2 * 9 * 4 * 4, dtype=torch.float32).reshape(2, 9, 4, 4) / 50
    x[1, 3, 0, 1] = math.nan
    y = sp.soft_pool2d(x, k, s, p, path=path)
    holds = torch.zeros_like(x).index_put_((torch.tensor(1), torch.tensor(3), torch.tensor(0),
                                           torch.tensor(1)), torch.tensor(1.0))
    nan = torch.nn.functional.max_pool2d(holds, k, s, p) > 0  # the windows holding it
    assert nan.sum() == (1 if k == 2 else 6)
    assert torch.equal(y.isnan(), nan)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_large_float32_inputs_are_stable(path):
    torch.manual_seed(4)
    x = ((torch.rand(2, 3, 8, 10) * 2 - 1) * 1e4).requires_grad_()
    y = sp.soft_pool2d(x, 3, 2, 1, path=path)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), direct(x.detach(), 2, 3, 2, 1, False),
                               rtol=1e-6, atol=1e-3)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    # with |x| this large the weights are one-hot: max pooling, gradient to the arg-max
    x2 = torch.tensor([[[[1e4, -1e4], [9900.0, 0.0]]]], requires_grad=True)
    sp.soft_pool2d(x2, 2, path=path).sum().backward()
    torch.testing.assert_close(x2.grad, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))


@pytest.mark.parametrize("path", CPU_PATHS)
def test_float32_extremes(path):
    fmax = torch.finfo(torch.float32).max
    x = torch.tensor([[[fmax, -fmax, 0.0, -fmax, 1.0, 2.0]]], requires_grad=True)
    y = sp.soft_pool1d(x, 2, path=path)
    torch.testing.assert_close(y.detach(), direct(x.detach(), 1, 2, None, 0, False).float())
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_whole_range(path, dtype):
    torch.manual_seed(5)
    fmax = torch.finfo(dtype).max
    x = ((torch.rand(2, 3, 8, 8) * 2 - 1) * fmax).to(dtype)
    x[0, 0, :2, :2] = fmax  # windows at the very top and bottom of the range
    x[0, 1, :2, :2] = -fmax
    x[1, 0] = (torch.randn(8, 8) * 2).to(dtype)  # and ordinary values
    x.requires_grad_()
    y = sp.soft_pool2d(x, 2, path=path)
    assert y.dtype == dtype and torch.isfinite(y).all()
    expected = direct(x.detach().float(), 2, 2, None, 0, False).to(dtype)
    torch.testing.assert_close(y, expected)
    y.float().sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()


def test_between_avg_and_max_and_gradient_reaches_every_tap():
    torch.manual_seed(6)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    y = sp.soft_pool2d(x, 2)
    assert (y <= torch.nn.functional.max_pool2d(x, 2) + 1e-6).all()
    assert (y >= torch.nn.functional.avg_pool2d(x, 2) - 1e-6).all()
    y.sum().backward()
    assert (x.grad != 0).all()


def test_padding_is_excluded_from_the_window():
    x = torch.full((1, 1, 3), -5.0)
    # one window covering [pad, x0, x1]: padding must not pull the result towards 0
    y = sp.soft_pool1d(x, 3, 2, 1)
    torch.testing.assert_close(y, torch.full((1, 1, 2), -5.0))


def test_path_query_and_override(monkeypatch):
    assert sp.softpool_path("cpu") in sp.PATHS
    assert sp.softpool_path("cpu", torch.float32) == "fused_cpu"  # a C compiler is here
    m = registry.create_pool("softpool")
    assert m.path is None
    m(torch.randn(1, 1, 4, 4))
    assert m.path == sp.last_path() == sp.softpool_path("cpu")
    monkeypatch.setenv("POOLREPRO_SOFTPOOL_PATH", "reference")
    assert sp.softpool_path("cpu") == "reference"
    m(torch.randn(1, 1, 4, 4))
    assert m.path == "reference"
    forced = registry.create_pool("softpool", path="reference")
    monkeypatch.delenv("POOLREPRO_SOFTPOOL_PATH")
    forced(torch.randn(1, 1, 4, 4))
    assert forced.path == "reference"
    with pytest.raises(ValueError, match="path"):
        sp.soft_pool2d(torch.randn(1, 1, 4, 4), 2, path="cuda_magic")


def test_argument_errors_match_torch():
    with pytest.raises(ValueError, match="half"):
        sp.soft_pool2d(torch.randn(1, 1, 4, 4), 2, 2, 2)
    with pytest.raises(ValueError, match="too small"):
        sp.soft_pool2d(torch.randn(1, 1, 2, 2), 3)
    with pytest.raises(TypeError):
        sp.soft_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.int64), 2)


def test_noncontiguous_and_channels_last_inputs():
    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    torch.testing.assert_close(sp.soft_pool2d(x, 2), sp.soft_pool2d(x.contiguous(), 2))
    xt = torch.randn(2, 8, 8, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(sp.soft_pool2d(xt, 2, path="fused_cpu"),
                               sp.soft_pool2d(xt, 2, path="reference"))


def test_modules_and_factory():
    for dim, cls in ((1, sp.SoftPool1d), (2, sp.SoftPool2d), (3, sp.SoftPool3d)):
        m = registry.create_pool("softpool", kernel_size=2, dim=dim)
        assert isinstance(m, cls)
        x = torch.randn(1, 2, *([4] * dim))
        torch.testing.assert_close(m(x), FUNCS[dim](x, 2))


_TRITON_SCRIPT = textwrap.dedent("""
    import os
    assert os.environ["TRITON_INTERPRET"] == "1"
    import torch
    from registry.pools import softpool as sp
    F = {1: sp.soft_pool1d, 2: sp.soft_pool2d, 3: sp.soft_pool3d}
    cases = [(1, (2, 3, 11), 3, 2, 1, False), (2, (2, 3, 7, 9), 2, None, 0, False),
             (2, (2, 3, 7, 9), 3, 2, 1, True), (3, (1, 2, 5, 6, 7), (2, 3, 3), (1, 2, 2),
             (1, 1, 0), True)]
    torch.manual_seed(0)
    for dim, shape, k, s, p, c in cases:
        for dt in (torch.float32, torch.bfloat16):
            x = (torch.randn(shape) * 4).to(dt).requires_grad_()
            outs = []
            for path in ("triton", "reference"):
                x.grad = None
                y = F[dim](x, k, s, p, c, path=path)
                assert sp.last_path() == path
                y.float().square().sum().backward()
                outs.append((y.detach().float(), x.grad.float().clone()))
            tol = 1e-5 if dt == torch.float32 else 2e-2
            torch.testing.assert_close(outs[0][0], outs[1][0], rtol=tol, atol=tol)
            torch.testing.assert_close(outs[0][1], outs[1][1], rtol=tol, atol=tol)
    fmax = torch.finfo(torch.bfloat16).max
    xb = ((torch.rand(1, 2, 6, 6) * 2 - 1) * fmax).to(torch.bfloat16).requires_grad_()
    yb = sp.soft_pool2d(xb, 2, path="triton")
    yb.float().sum().backward()
    assert torch.isfinite(yb).all() and torch.isfinite(xb.grad).all()
    torch.testing.assert_close(yb, sp.soft_pool2d(xb.detach(), 2, path="reference"))
    big = (torch.rand(1, 2, 6, 6) * 2e4 - 1e4)
    torch.testing.assert_close(sp.soft_pool2d(big, 2, path="triton"),
                               sp.soft_pool2d(big, 2, path="reference"))
    for dim, shape, k, s, p, c in [(2, (1, 1, 3, 4), 3, 2, 1, True), (1, (1, 2, 5), 2, 1, 1, 0),
                                   (3, (1, 1, 3, 2, 3), 2, None, 0, True)]:
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: F[dim](t, k, s, p, c, path="triton"), (x,))
    print("TRITON-OK")
""")


def test_triton_kernels_under_interpreter():
    pytest.importorskip("triton")
    repo = Path(registry.__path__[0]).parent
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], capture_output=True,
                         text=True, env=env, cwd=str(repo), timeout=300)
    if out.returncode != 0 and "interpret" in out.stderr.lower() and "not supported" in \
            out.stderr.lower():
        pytest.skip("this Triton build has no CPU interpreter")
    assert out.returncode == 0 and "TRITON-OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_triton_on_cuda_matches_reference(case):
    dim, shape, k, s, p, ceil = case
    assert sp.softpool_path("cuda") == "triton"
    x = (torch.randn(shape, device="cuda") * 3).requires_grad_()
    res = []
    for path in ("triton", "reference"):
        x.grad = None
        y = FUNCS[dim](x, k, s, p, ceil, path=path)
        y.square().sum().backward()
        res.append((y.detach(), x.grad.clone()))
    torch.testing.assert_close(res[0][0], res[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(res[0][1], res[1][1], rtol=1e-4, atol=1e-5)
    xd = torch.randn(shape, device="cuda", dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: FUNCS[dim](t, k, s, p, ceil, path="triton"),
                                    (xd,))
