"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from Debian's ``dataset-fashion-mnist`` package.

The package installs the four official IDX files (gzip) under
``/usr/share/datasets/fashion-mnist``; we read them directly, check their SHA-256 against the
official release and the item counts (60,000 train / 10,000 test), and decode to uint8.
``fashion_mnist_32`` pads each 28×28 image to 32×32 and repeats it over 3 channels so CIFAR
model code runs on it unchanged.
"""

from __future__ import annotations

import gzip
import os
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from registry.datasets.base import DataBundle, DatasetError, Split, balanced_subset, sha256_file

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {  # SHA-256 of the official release files
    "train-images-idx3-ubyte.gz":
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz":
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
COUNTS = {"train": 60_000, "test": 10_000}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = 0.2860, 0.3530  # of the training images on the [0, 1] scale


def _locate(root: str | os.PathLike | None) -> Path:
    d = Path(root or os.environ.get("POOLREPRO_FASHION_MNIST", DEBIAN_DIR)).expanduser()
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise DatasetError(
            f"Fashion-MNIST not found: {d} lacks {', '.join(missing)}. Install it with "
            f"`sudo apt-get install dataset-fashion-mnist` (files land in {DEBIAN_DIR}), or "
            f"point dataset_args.root / $POOLREPRO_FASHION_MNIST at a directory holding the "
            f"four official *-ubyte.gz files."
        )
    return d


def read_idx(path: Path) -> np.ndarray:
    """Decode one (gzipped) IDX file: magic, dims, then big-endian uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path} is corrupt or truncated ({e}); reinstall the dataset") from e
    if len(data) < 4:
        raise DatasetError(f"{path} is too short to be an IDX file")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DatasetError(f"{path} is not an IDX uint8 file (magic {data[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


@lru_cache(maxsize=2)
def _load(root: str, verify: bool) -> tuple[torch.Tensor, ...]:
    d = Path(root)
    if verify:
        for name, digest in FILES.items():
            got = sha256_file(d / name)
            if got != digest:
                raise DatasetError(
                    f"{d / name} has SHA-256 {got[:12]}…, not the official {digest[:12]}…; the "
                    f"file is corrupt or not Fashion-MNIST. Reinstall dataset-fashion-mnist, or "
                    f"pass dataset_args.verify = false for a deliberately different copy."
                )
    xtr = read_idx(d / "train-images-idx3-ubyte.gz")
    ytr = read_idx(d / "train-labels-idx1-ubyte.gz")
    xte = read_idx(d / "t10k-images-idx3-ubyte.gz")
    yte = read_idx(d / "t10k-labels-idx1-ubyte.gz")
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if len(x) != len(y):
            raise DatasetError(f"Fashion-MNIST {split}: {len(x)} images but {len(y)} labels")
        if verify and len(x) != COUNTS[split]:
            raise DatasetError(f"Fashion-MNIST {split}: {len(x)} items, expected {COUNTS[split]}")
    t = [torch.from_numpy(a.copy()) for a in (xtr, ytr, xte, yte)]
    return t[0].unsqueeze(1), t[1].long(), t[2].unsqueeze(1), t[3].long()


def fashion_mnist(
    root: str | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    verify: bool = True,
    size: int = 28,
    channels: int = 1,
) -> DataBundle:
    """Fashion-MNIST as uint8 ``[N, channels, size, size]``; ``size > 28`` zero-pads
    (centred), ``channels = 3`` repeats the grey channel."""
    d = _locate(root)
    xtr, ytr, xte, yte = _load(str(d), verify)
    train = balanced_subset(Split(xtr, ytr), train_subset, seed, 10)
    test = balanced_subset(Split(xte, yte), test_subset, seed + 1, 10)
    if size < 28:
        raise DatasetError(f"fashion_mnist size must be ≥ 28 (pads, never crops), got {size}")

    def shape(s: Split) -> Split:
        x = s.x
        if size > 28:
            lo = (size - 28) // 2
            x = F.pad(x, (lo, size - 28 - lo, lo, size - 28 - lo))
        if channels != 1:
            x = x.expand(-1, channels, -1, -1)
        return Split(x.contiguous(), s.y)

    return DataBundle(
        name="fashion_mnist" if (size, channels) == (28, 1) else f"fashion_mnist_{size}",
        num_classes=10, in_chans=channels, input_size=(size, size),
        mean=(MEAN,) * channels, std=(STD,) * channels,
        train=shape(train), test=shape(test),
        provenance={"source": str(d), "verified_sha256": verify,
                    "train_items": len(train), "test_items": len(test),
                    "classes": list(CLASSES)},
    )


def fashion_mnist_32(root: str | None = None, train_subset: int | None = None,
                     test_subset: int | None = None, seed: int = 0,
                     verify: bool = True) -> DataBundle:
    """Fashion-MNIST zero-padded to 32×32 and repeated over 3 channels (CIFAR's shape)."""
    return fashion_mnist(root, train_subset, test_subset, seed, verify, size=32, channels=3)
