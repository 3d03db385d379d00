"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the official "python version" pickles.

Expected layout (as extracted from the official tarballs):

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}

``root`` defaults to ``$POOLREPRO_DATA`` (or ``~/.cache/poolrepro/data``). Nothing is
downloaded. Each pickle holds ``b"data"`` (N×3072 uint8, channel-major) and ``b"labels"``
(CIFAR-10) or ``b"fine_labels"`` (CIFAR-100).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from registry.datasets.base import (
    DataBundle,
    DatasetError,
    Split,
    balanced_subset,
    check_count,
    data_root,
)

_SPECS = {
    "cifar10": dict(
        subdir="cifar-10-batches-py", classes=10, label_key=b"labels",
        train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": dict(
        subdir="cifar-100-python", classes=100, label_key=b"fine_labels",
        train=["train"], test=["test"],
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    ),
}
COUNTS = {"train": 50_000, "test": 10_000}


def _find_dir(root: str | os.PathLike | None, subdir: str) -> Path:
    base = data_root(root, "")
    for cand in (base / subdir, base):
        if cand.is_dir() and any((cand / f).exists() for f in ("test_batch", "test")):
            return cand
    raise DatasetError(
        f"CIFAR data not found under {base}: expected a directory '{subdir}' holding the "
        f"official python-version pickles (download and extract the 'python version' tarball "
        f"from the CIFAR site yourself). Pass dataset_args.root = '/path/containing/{subdir}' "
        f"or set POOLREPRO_DATA."
    )


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"missing CIFAR file {path}; the extraction is incomplete")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:  # truncated or not a pickle
        raise DatasetError(
            f"{path} is corrupt or not a CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        raise DatasetError(f"{path} lacks the keys b'data' and {label_key!r}")
    x = np.asarray(d[b"data"], dtype=np.uint8)
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise DatasetError(f"{path}: data has shape {x.shape} and {len(y)} labels; expected N×3072")
    return x, y


def _load(name: str, root, train_subset, test_subset, seed, allow_partial) -> DataBundle:
    spec = _SPECS[name]
    d = _find_dir(root, spec["subdir"])
    splits = {}
    for split in ("train", "test"):
        parts = [_read_batch(d / f, spec["label_key"]) for f in spec[split]]
        x = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
        y = np.concatenate([p[1] for p in parts])
        check_count(name, split, len(x), COUNTS[split], allow_partial)
        if y.min() < 0 or y.max() >= spec["classes"]:
            raise DatasetError(f"{name} {split}: labels outside 0..{spec['classes'] - 1}")
        splits[split] = Split(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
    return DataBundle(
        name=name, num_classes=spec["classes"], in_chans=3, input_size=(32, 32),
        mean=spec["mean"], std=spec["std"],
        train=balanced_subset(splits["train"], train_subset, seed, spec["classes"]),
        test=balanced_subset(splits["test"], test_subset, seed + 1, spec["classes"]),
        provenance={"source": str(d), "train_items": len(splits["train"]),
                    "test_items": len(splits["test"])},
    )


def cifar10(root: str | None = None, train_subset: int | None = None,
            test_subset: int | None = None, seed: int = 0,
            allow_partial: bool = False) -> DataBundle:
    return _load("cifar10", root, train_subset, test_subset, seed, allow_partial)


def cifar100(root: str | None = None, train_subset: int | None = None,
             test_subset: int | None = None, seed: int = 0,
             allow_partial: bool = False) -> DataBundle:
    return _load("cifar100", root, train_subset, test_subset, seed, allow_partial)
