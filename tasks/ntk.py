"""Task ``ntk_regression``: S3Net's expressibility experiment in the neural-tangent-kernel
regime (Fan et al., *On a Sparse Shortcut Topology of Artificial Neural Networks*, arXiv
1811.09003, Sec. "Expressibility", Fig. 3).

The authors' notebook (``expressibility experiment/topology_NTK_comparison_github.ipynb``,
neural-tangents ``stax``; read for facts) compares two fully connected topologies of depth K,
every dense layer of width n → ∞ with ``W_std = 1.5``, ``b_std = 0.05`` (NTK
parameterisation), on Boston housing (:mod:`registry.datasets.tabular`):

* **residual** (Fig. 2b): ``h_0 = Dense(x)``; ``K − 2`` blocks ``h_b = h_{b−1} +
  Dense(ReLU(h_{b−1}))``; ``f = Dense_1(ReLU(h_{K−2}))``.
* **sparse shortcut** (Fig. 2a, "Proposed"): ``h_0 = Dense(x)``; a chain ``h_j =
  Dense(ReLU(h_{j−1}))``, j = 1 … K − 2, whose every layer is connected *only* to the output:
  ``f = Dense_1(ReLU(h_1 + … + h_{K−2}))``. (The notebook builds the chain as K − 2
  independent ``stax.parallel`` branches of depth 1 … K − 2; in the infinite-width limit the
  shared chain and the independent branches have the same kernel, because the cross terms
  between two branches contain a zero-mean weight matrix that only one of them has —
  ``tests/test_ntk.py`` checks both finite forms against the kernel.)

K counts the dense layers on the longest path (input layer, K − 2 hidden, output); the
notebook's cell with 4 residual blocks / 4 branches is the figure's K = 6 (its printed
0.7307 / 0.7034 are ``PlotResult.m``'s K = 6 values).

Kernels (the standard layer-wise recursion; Jacot et al. 2018, Arora et al. 2019, Lee et al.
2019 App. C; neural-tangents' ``Dense``/``Relu``/``FanInSum`` rules). With Σ the NNGP
covariance and Θ the NTK of a layer's pre-activations:

* input dense: ``Σ = W²·x·x'/d + b²``, ``Θ = Σ``;
* ReLU then dense: ``Σ' = W²·E[φ(u)φ(v)] + b²``, ``Θ' = Σ' + W²·E[φ'(u)φ'(v)]·Θ`` with
  (u, v) ~ N(0, Σ) and the arc-cosine closed forms (Cho & Saul 2009)
  ``E[φφ] = √(Σ_xx Σ_yy)/(2π)·(sin θ + (π − θ) cos θ)``, ``E[φ'φ'] = (π − θ)/(2π)``,
  ``cos θ = Σ_xy / √(Σ_xx Σ_yy)``;
* sum of independent branches (residual add, the sparse output sum): Σ and Θ add.

Prediction is the mean of the infinitely trained ensemble, as ``nt.predict.
gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, diag_reg=0.1)(get="ntk")``:
``f(x*) = Θ(x*, X)·(Θ(X, X) + λI)⁻¹·y`` with ``λ = diag_reg · tr Θ(X, X) / n``. The notebook
scores ``mean_squared_error(pred, y_test) / n_test``; that normalised number is what Fig. 3
plots and what the metrics ``residual_k{K}`` / ``sparse_k{K}`` report (``raw_mse`` series:
the plain MSE).

params (defaults = the notebook): ``depths`` [4 … 10], ``w_std`` 1.5, ``b_std`` 0.05,
``diag_reg`` 0.1, ``split_seed`` (the train/test split's random state; default ``"seed"``:
the run's seed — the claims that mirror the figure pin the notebook's 13),
``test_fraction`` 0.1, ``standardize`` false.
Everything runs in float64 on the CPU in about a second.

Metrics: ``residual_k{K}``, ``sparse_k{K}``, ``margin_k{K}`` (= residual − sparse) for each K,
``min_margin`` (the smallest margin over K), ``sparse_wins`` (how many K the sparse shortcut
topology has the lower error at) and ``n_depths``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import registry
from suite.specs import RunSpec, TaskContext, TaskResult
from tasks import check_params

TOPOLOGIES = ("residual", "sparse")
DEFAULTS: dict[str, Any] = {"depths": [4, 5, 6, 7, 8, 9, 10], "w_std": 1.5, "b_std": 0.05,
                            "diag_reg": 0.1, "split_seed": "seed", "test_fraction": 0.1,
                            "standardize": False}
#: depths whose metric names the task registers (``tasks/__init__.py``)
METRIC_DEPTHS = range(2, 17)


@dataclass(frozen=True)
class Kernel:
    """NNGP (``nngp``) and NTK (``ntk``) between two sets of inputs, ``[n1, n2]``, plus the
    NNGP variances of each set (``var1 [n1]``, ``var2 [n2]``) that the ReLU step needs."""

    nngp: torch.Tensor
    ntk: torch.Tensor
    var1: torch.Tensor
    var2: torch.Tensor

    def __add__(self, other: Kernel) -> Kernel:  # FanInSum of independent branches
        return Kernel(self.nngp + other.nngp, self.ntk + other.ntk, self.var1 + other.var1,
                      self.var2 + other.var2)


def relu_moments(cov: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E[φ(u)φ(v)], E[φ'(u)φ'(v)])`` for φ = ReLU and (u, v) centred Gaussian with
    variances ``var1[:, None]``, ``var2[None, :]`` and covariance ``cov`` (arc-cosine kernels
    of degree 1 and 0, Cho & Saul 2009)."""
    norm = torch.sqrt(var1[:, None] * var2[None, :])
    cos = (cov / norm).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    e_phi = norm / (2 * math.pi) * (torch.sin(theta) + (math.pi - theta) * cos)
    e_dphi = (math.pi - theta) / (2 * math.pi)
    return e_phi, e_dphi


def input_dense(x1: torch.Tensor, x2: torch.Tensor, w_std: float, b_std: float) -> Kernel:
    """The first dense layer on raw inputs (neural-tangents normalises by the input width)."""
    d = x1.shape[1]
    w2, b2 = w_std**2, b_std**2
    nngp = w2 * (x1 @ x2.T) / d + b2
    return Kernel(nngp, nngp.clone(), w2 * (x1 * x1).sum(1) / d + b2,
                  w2 * (x2 * x2).sum(1) / d + b2)


def relu_dense(k: Kernel, w_std: float, b_std: float) -> Kernel:
    """ReLU then a dense layer: the NNGP and NTK recursion of one hidden layer."""
    w2, b2 = w_std**2, b_std**2
    e_phi, e_dphi = relu_moments(k.nngp, k.var1, k.var2)
    nngp = w2 * e_phi + b2
    ntk = nngp + w2 * e_dphi * k.ntk
    # diagonal: θ = 0, E[φ(u)²] = var / 2
    return Kernel(nngp, ntk, w2 * k.var1 / 2 + b2, w2 * k.var2 / 2 + b2)


def topology_kernel(topology: str, depth: int, x1: torch.Tensor, x2: torch.Tensor,
                    w_std: float = 1.5, b_std: float = 0.05) -> Kernel:
    """The infinite-width kernel of the whole network (scalar output) of the given topology
    and depth K (≥ 3: input layer, K − 2 hidden layers, output layer)."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {TOPOLOGIES}, not {topology!r}")
    if depth < 3:
        raise ValueError(f"depth K must be ≥ 3 (input, ≥ 1 hidden, output), got {depth}")
    h = input_dense(x1, x2, w_std, b_std)
    if topology == "residual":
        for _ in range(depth - 2):
            h = h + relu_dense(h, w_std, b_std)
        top = h
    else:
        top = None
        for _ in range(depth - 2):
            h = relu_dense(h, w_std, b_std)
            top = h if top is None else top + h
    return relu_dense(top, w_std, b_std)


def ntk_predict(k_train: torch.Tensor, k_test_train: torch.Tensor, y_train: torch.Tensor,
                diag_reg: float) -> torch.Tensor:
    """Mean prediction of the infinitely trained ensemble (MSE loss, t → ∞), with
    neural-tangents' trace-scaled ridge ``λ = diag_reg · tr K / n``."""
    n = k_train.shape[0]
    lam = diag_reg * torch.trace(k_train) / n
    chol = torch.linalg.cholesky(k_train + lam * torch.eye(n, dtype=k_train.dtype))
    return k_test_train @ torch.cholesky_solve(y_train, chol)


def regression_mse(topology: str, depth: int, bundle, w_std: float = 1.5, b_std: float = 0.05,
                   diag_reg: float = 0.1) -> float:
    """Plain test MSE of NTK regression with one topology and depth on ``bundle``."""
    xtr, ytr = bundle.train.x.double(), bundle.train.y.double()
    xte, yte = bundle.test.x.double(), bundle.test.y.double()
    k_tr = topology_kernel(topology, depth, xtr, xtr, w_std, b_std).ntk
    k_te = topology_kernel(topology, depth, xte, xtr, w_std, b_std).ntk
    pred = ntk_predict(k_tr, k_te, ytr, diag_reg)
    return float(((pred - yte) ** 2).mean())


# -- finite networks (for the empirical-NTK check in tests/test_ntk.py) ---------------------
class NTKDense(nn.Module):
    """Dense layer in the NTK parameterisation: ``W_std/√fan_in · W x + b_std · b`` with W, b
    ~ N(0, 1) — the parameterisation of neural-tangents' ``stax.Dense``."""

    def __init__(self, fan_in: int, fan_out: int, w_std: float, b_std: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in))
        self.bias = nn.Parameter(torch.randn(fan_out))
        self.w_scale, self.b_std = w_std / math.sqrt(fan_in), b_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_scale * (x @ self.weight.T) + self.b_std * self.bias


class TopologyMLP(nn.Module):
    """The finite-width network of :func:`topology_kernel` (scalar output).

    ``branches="shared"`` (default) is the sparse shortcut topology as S3Net builds it: one
    chain whose every layer also feeds the output sum. ``branches="independent"`` is the
    notebook's ``stax.parallel`` form: the j-th summand is its own chain of j layers."""

    def __init__(self, topology: str, depth: int, d_in: int, width: int, w_std: float = 1.5,
                 b_std: float = 0.05, branches: str = "shared"):
        super().__init__()
        if topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {TOPOLOGIES}, not {topology!r}")
        if branches not in ("shared", "independent"):
            raise ValueError(f"branches must be 'shared' or 'independent', not {branches!r}")
        self.topology, self.branches = topology, branches
        hidden = depth - 2

        def dense(i: int, o: int) -> NTKDense:
            return NTKDense(i, o, w_std, b_std)

        self.inp = dense(d_in, width)
        if topology == "sparse" and branches == "independent":
            self.chains = nn.ModuleList(
                nn.ModuleList(dense(width, width) for _ in range(j + 1)) for j in range(hidden))
        else:
            self.hidden = nn.ModuleList(dense(width, width) for _ in range(hidden))
        self.out = dense(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        h = self.inp(x)
        if self.topology == "residual":
            for layer in self.hidden:
                h = h + layer(relu(h))
            return self.out(relu(h))
        total = 0
        if self.branches == "shared":
            for layer in self.hidden:
                h = layer(relu(h))
                total = total + h
        else:
            for chain in self.chains:
                g = h
                for layer in chain:
                    g = layer(relu(g))
                total = total + g
        return self.out(relu(total))


def empirical_ntk(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``Θ(x1, x2) = Σ_θ ∂f(x1)/∂θ · ∂f(x2)/∂θ`` of a scalar-output model, by
    ``torch.func.jacrev``, contracted one parameter tensor at a time."""
    from torch.func import functional_call, jacrev

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x,)).squeeze(-1)

    j1 = jacrev(f)(params, x1)
    j2 = j1 if x2 is x1 else jacrev(f)(params, x2)
    out = torch.zeros(x1.shape[0], x2.shape[0], dtype=x1.dtype)
    for name in params:
        out += j1[name].flatten(1) @ j2[name].flatten(1).T
    return out


# -- the task -----------------------------------------------------------------------------
def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    p = check_params("ntk_regression", params, DEFAULTS)
    depths = p["depths"]
    if (not isinstance(depths, list) or not depths
            or not all(isinstance(k, int) and k in METRIC_DEPTHS for k in depths)):
        raise ValueError(f"params.depths must be a non-empty list of integers in "
                         f"[{METRIC_DEPTHS.start}, {METRIC_DEPTHS.stop - 1}], got {depths!r}")
    return p


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    p = resolve_params(spec.params)
    split_seed = spec.seed if p["split_seed"] == "seed" else int(p["split_seed"])
    args = {"split_seed": split_seed, "test_fraction": p["test_fraction"],
            "standardize": p["standardize"], **spec.dataset_args}
    bundle = registry.create_dataset(spec.dataset, **args)
    if bundle.num_classes != 0:
        raise ValueError(f"ntk_regression needs a regression dataset (num_classes = 0), "
                         f"got {spec.dataset!r} with {bundle.num_classes} classes")
    n_test = len(bundle.test)
    metrics: dict[str, float] = {}
    series: dict[str, list[float]] = {"depth": [float(k) for k in p["depths"]]}
    for topo in TOPOLOGIES:
        raw = [regression_mse(topo, k, bundle, p["w_std"], p["b_std"], p["diag_reg"])
               for k in p["depths"]]
        series[topo] = [m / n_test for m in raw]  # the notebook's MSE / n_test
        series[f"{topo}_raw_mse"] = raw
        for k, m in zip(p["depths"], series[topo], strict=True):
            metrics[f"{topo}_k{k}"] = m
    margins = [r - s for r, s in zip(series["residual"], series["sparse"], strict=True)]
    series["margin"] = margins
    for k, m in zip(p["depths"], margins, strict=True):
        metrics[f"margin_k{k}"] = m
    metrics.update(min_margin=min(margins), sparse_wins=float(sum(m > 0 for m in margins)),
                   n_depths=float(len(margins)))
    ctx.provenance["ntk"] = {
        "kernel": "analytic infinite-width NTK (arc-cosine recursion), float64",
        "prediction": "t=inf ensemble mean, ridge diag_reg*tr(K)/n", "split_seed": split_seed,
        "metric": "mean squared error / n_test (the notebook's normalisation)",
        "dataset": bundle.provenance,
    }
    table = [{"K": k, "residual": r, "sparse": s}
             for k, r, s in zip(p["depths"], series["residual"], series["sparse"], strict=True)]
    return TaskResult(metrics=metrics, series=series, artifacts={"mse_by_depth": table})
