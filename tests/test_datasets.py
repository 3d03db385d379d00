"""Dataset loaders: Fashion-MNIST (Debian package), CIFAR-10/100 in the official pickle
format (tiny copies written here), the synthetic set, and balanced subsets."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import registry
from registry.datasets import fashion_mnist as fm
from registry.datasets.base import DatasetError, Split, balanced_subset, check_count
from registry.datasets.cifar import cifar10, cifar100
from registry.datasets.synthetic import synthetic

FMNIST = Path(fm.DEBIAN_DIR)
needs_fmnist = pytest.mark.skipif(
    not all((FMNIST / f).is_file() for f in fm.FILES),
    reason="dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)")



pytestmark = pytest.mark.usefixtures("one_thread")

# -- balanced subsets -------------------------------------------------------------------------
def _split(n: int = 1000, classes: int = 10, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.arange(n, dtype=torch.int64).view(n, 1, 1, 1)  # x encodes the item index
    return Split(x, y)


def test_balanced_subset_is_balanced_and_deterministic():
    s = _split()
    a = balanced_subset(s, 103, seed=5, num_classes=10)
    assert len(a) == 103
    counts = torch.bincount(a.y, minlength=10).tolist()
    assert counts == [11, 11, 11] + [10] * 7  # quota 10, remainder to the first classes
    b = balanced_subset(s, 103, seed=5, num_classes=10)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    c = balanced_subset(s, 103, seed=6, num_classes=10)
    assert not torch.equal(a.x, c.x)
    # items keep their labels
    idx = a.x.flatten()
    assert torch.equal(s.y[idx], a.y)
    assert len(set(idx.tolist())) == 103  # no duplicates


def test_balanced_subset_all_and_bad_sizes():
    s = _split(50)
    assert balanced_subset(s, None, 0, 10) is s
    assert balanced_subset(s, 50, 0, 10) is s
    assert balanced_subset(s, 500, 0, 10) is s
    with pytest.raises(DatasetError, match="positive"):
        balanced_subset(s, 0, 0, 10)


def test_balanced_subset_never_returns_fewer_items_silently():
    y = torch.tensor([0] * 50 + [1] * 2)  # class 1 is nearly empty
    s = Split(torch.zeros(52, 1, 1, 1, dtype=torch.uint8), y)
    try:
        sub = balanced_subset(s, 20, 0, 2)
    except DatasetError:
        return
    assert len(sub) == 20


def test_check_count_message():
    check_count("cifar10", "train", 50_000, 50_000, False)
    check_count("cifar10", "train", 10, 50_000, True)
    with pytest.raises(DatasetError) as ei:
        check_count("cifar10", "train", 10, 50_000, False)
    assert "10 items, expected 50000" in str(ei.value)
    assert "allow_partial" in str(ei.value)


# -- synthetic -----------------------------------------------------------------------------------
def test_synthetic_is_deterministic_per_seed():
    a = synthetic(train_size=64, test_size=32, size=16, num_classes=4, seed=3)
    b = synthetic(train_size=64, test_size=32, size=16, num_classes=4, seed=3)
    c = synthetic(train_size=64, test_size=32, size=16, num_classes=4, seed=4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.train.x.shape == (64, 3, 16, 16) and a.train.x.dtype == torch.uint8
    assert a.train.y.dtype == torch.int64 and set(a.train.y.tolist()) == {0, 1, 2, 3}
    assert torch.bincount(a.train.y).tolist() == [16] * 4
    assert (a.num_classes, a.in_chans, a.input_size) == (4, 3, (16, 16))
    assert not torch.equal(a.train.x[:32], a.test.x)  # train and test are different draws


def test_synthetic_shapes():
    v = synthetic(train_size=8, test_size=4, size=16, channels=2, frames=4)
    assert v.train.x.shape == (8, 2, 4, 16, 16) and v.input_size == (4, 16, 16)
    s = synthetic(train_size=100, test_size=10, train_subset=20)
    assert len(s.train) == 20 and len(s.test) == 10


def test_synthetic_classes_are_separable():
    # nearest class-mean on the training set classifies the test set well above chance
    b = synthetic(train_size=256, test_size=128, size=16, num_classes=4)
    xtr, xte = b.train.x.float().flatten(1), b.test.x.float().flatten(1)
    means = torch.stack([xtr[b.train.y == c].mean(0) for c in range(4)])
    pred = torch.cdist(xte, means).argmin(1)
    assert (pred == b.test.y).float().mean() > 0.5


def test_registry_creates_datasets_by_alias():
    b = registry.create_dataset("synthetic", train_size=8, test_size=4, size=8)
    assert len(b.train) == 8
    assert registry.DATASETS.resolve("fmnist32") == "fashion_mnist_32"
    assert registry.DATASETS.resolve("cifar-10") == "cifar10"


# -- Fashion-MNIST ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fmnist():
    return fm.fashion_mnist()  # verify=True: SHA-256 of all four files


@needs_fmnist
def test_fashion_mnist_official_counts_and_sha(fmnist):
    assert fmnist.train.x.shape == (60_000, 1, 28, 28)
    assert fmnist.test.x.shape == (10_000, 1, 28, 28)
    assert fmnist.train.x.dtype == torch.uint8 and fmnist.train.y.dtype == torch.int64
    assert fmnist.provenance["verified_sha256"] is True
    assert fmnist.provenance["source"] == str(FMNIST)
    assert torch.bincount(fmnist.train.y).tolist() == [6000] * 10
    assert torch.bincount(fmnist.test.y).tolist() == [1000] * 10
    # the stated normalisation constants match the data
    x = fmnist.train.x.float() / 255
    assert x.mean().item() == pytest.approx(fm.MEAN, abs=1e-3)
    assert x.std().item() == pytest.approx(fm.STD, abs=1e-3)


@needs_fmnist
def test_fashion_mnist_32_shape(fmnist):
    b = fm.fashion_mnist_32(train_subset=50, test_subset=20, seed=1)
    assert b.train.x.shape == (50, 3, 32, 32) and b.test.x.shape == (20, 3, 32, 32)
    assert b.train.x.dtype == torch.uint8
    assert (b.in_chans, b.input_size, b.name) == (3, (32, 32), "fashion_mnist_32")
    x = b.train.x
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert x[:, :, :2].sum() == 0 and x[:, :, -2:].sum() == 0  # zero padding, centred
    assert x[:, :, :, :2].sum() == 0 and x[:, :, :, -2:].sum() == 0
    # the centre is an original 28x28 image: find each in the full training set
    full = fmnist.train.x[:, 0].flatten(1)
    for img in x[:5, 0, 2:30, 2:30].flatten(1):
        assert (full == img).all(1).any()


@needs_fmnist
def test_fashion_mnist_balanced_subset_is_deterministic(fmnist):
    a = fm.fashion_mnist(train_subset=200, test_subset=50, seed=0)
    b = fm.fashion_mnist(train_subset=200, test_subset=50, seed=0)
    c = fm.fashion_mnist(train_subset=200, test_subset=50, seed=1)
    assert torch.bincount(a.train.y, minlength=10).tolist() == [20] * 10
    assert torch.bincount(a.test.y, minlength=10).tolist() == [5] * 10
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.provenance["train_items"] == 200


@needs_fmnist
def test_fashion_mnist_size_below_28_is_refused(fmnist):
    with pytest.raises(DatasetError, match="≥ 28"):
        fm.fashion_mnist(size=16)


def test_fashion_mnist_missing_directory(tmp_path):
    with pytest.raises(DatasetError) as ei:
        fm.fashion_mnist(root=str(tmp_path))
    msg = str(ei.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert str(tmp_path) in msg and "train-images-idx3-ubyte.gz" in msg


def test_fashion_mnist_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLREPRO_FASHION_MNIST", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetError, match="elsewhere"):
        fm.fashion_mnist()


def _corrupt_copy(tmp_path: Path) -> Path:
    d = tmp_path / "fmnist"
    d.mkdir()
    for name in fm.FILES:
        if name == "train-images-idx3-ubyte.gz":
            data = (FMNIST / name).read_bytes()
            (d / name).write_bytes(data[: len(data) // 2])  # truncated
        else:
            os.symlink(FMNIST / name, d / name)
    return d


@needs_fmnist
def test_fashion_mnist_corrupt_copy_fails_verification(tmp_path):
    d = _corrupt_copy(tmp_path)
    with pytest.raises(DatasetError) as ei:
        fm.fashion_mnist(root=str(d))
    msg = str(ei.value)
    assert "train-images-idx3-ubyte.gz" in msg and "SHA-256" in msg and "verify = false" in msg


@needs_fmnist
def test_fashion_mnist_corrupt_copy_without_verification(tmp_path):
    d = _corrupt_copy(tmp_path)
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        fm.fashion_mnist(root=str(d), verify=False)


def _idx_gz(path: Path, arr: np.ndarray) -> None:
    import gzip
    import struct

    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files_unverified(tmp_path):
    # a deliberately different copy in the official IDX format, loaded with verify = false
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    ytr = np.arange(30) % 10
    _idx_gz(tmp_path / "train-images-idx3-ubyte.gz", xtr)
    _idx_gz(tmp_path / "train-labels-idx1-ubyte.gz", ytr)
    _idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", xtr[:10])
    _idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", ytr[:10])
    b = fm.fashion_mnist(root=str(tmp_path), verify=False)
    assert torch.equal(b.train.x[:, 0], torch.from_numpy(xtr))
    assert b.train.y.tolist() == ytr.tolist()
    assert b.provenance["verified_sha256"] is False
    # with verification on, the same copy is refused
    with pytest.raises(DatasetError, match="SHA-256"):
        fm.fashion_mnist(root=str(tmp_path))


def test_fashion_mnist_label_count_mismatch(tmp_path):
    _idx_gz(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    _idx_gz(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4))
    _idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    _idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(DatasetError, match="5 images but 4 labels"):
        fm.fashion_mnist(root=str(tmp_path), verify=False)


def test_read_idx_rejects_non_idx(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DatasetError, match="not an IDX uint8 file"):
        fm.read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")  # header says 5 bytes, holds 2
    with pytest.raises(DatasetError, match="header says"):
        fm.read_idx(p)


# -- CIFAR (tiny copies in the official pickle format) -------------------------------------------
def _pickle(path: Path, d: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def _batch(n: int, classes: int, offset: int, label_keys: tuple[bytes, ...]) -> dict:
    """``n`` random images; labels ``offset, offset + 1, ...`` modulo ``classes``."""
    rng = np.random.default_rng(offset)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [(offset + i) % classes for i in range(n)]
    d = {b"batch_label": b"tiny", b"data": data, b"filenames": [b"x.png"] * n}
    for k in label_keys:
        d[k] = labels if k != b"coarse_labels" else [lab % 20 for lab in labels]
    return d


def write_cifar10(root: Path, per_batch: int = 4, test: int = 10) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        _pickle(d / f"data_batch_{i}", _batch(per_batch, 10, (i - 1) * per_batch, (b"labels",)))
    _pickle(d / "test_batch", _batch(test, 10, 0, (b"labels",)))
    _pickle(d / "batches.meta", {b"label_names": [b"airplane"] * 10,
                                 b"num_cases_per_batch": per_batch, b"num_vis": 3072})
    return d


def write_cifar100(root: Path, train: int = 200, test: int = 100) -> Path:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    keys = (b"fine_labels", b"coarse_labels")
    _pickle(d / "train", _batch(train, 100, 0, keys))
    _pickle(d / "test", _batch(test, 100, 0, keys))
    _pickle(d / "meta", {b"fine_label_names": [b"apple"] * 100,
                         b"coarse_label_names": [b"fruit"] * 20})
    return d


def test_cifar10_tiny_copy_loads_with_allow_partial(tmp_path):
    d = write_cifar10(tmp_path)
    b = cifar10(root=str(tmp_path), allow_partial=True)
    assert b.train.x.shape == (20, 3, 32, 32) and b.test.x.shape == (10, 3, 32, 32)
    assert b.train.x.dtype == torch.uint8 and b.train.y.dtype == torch.int64
    assert (b.num_classes, b.in_chans, b.input_size) == (10, 3, (32, 32))
    assert b.provenance["source"] == str(d)
    # channel-major rows: bytes 0..1023 are red, 1024.. green; row-major pixels within
    raw = pickle.loads((d / "data_batch_1").read_bytes(), encoding="bytes")
    row = raw[b"data"][0]
    assert b.train.x[0, 0, 0, 0] == row[0] and b.train.x[0, 0, 0, 1] == row[1]
    assert b.train.x[0, 0, 1, 0] == row[32] and b.train.x[0, 1, 0, 0] == row[1024]
    assert b.train.x[0, 2, 31, 31] == row[3071]
    assert b.train.y[:4].tolist() == raw[b"labels"]
    # the root may also be the batches directory itself
    assert len(cifar10(root=str(d), allow_partial=True).train) == 20


def test_cifar10_from_poolrepro_data(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    monkeypatch.setenv("POOLREPRO_DATA", str(tmp_path))
    b = registry.create_dataset("cifar10", allow_partial=True, train_subset=10, test_subset=10)
    assert torch.bincount(b.train.y, minlength=10).tolist() == [1] * 10


def test_cifar10_without_allow_partial_fails_the_count(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DatasetError) as ei:
        cifar10(root=str(tmp_path))
    msg = str(ei.value)
    assert "cifar10 train split has 20 items, expected 50000" in msg
    assert "allow_partial" in msg


def test_cifar100_tiny_copy(tmp_path):
    write_cifar100(tmp_path)
    b = cifar100(root=str(tmp_path), allow_partial=True, train_subset=100, seed=3)
    assert b.num_classes == 100 and b.train.x.shape == (100, 3, 32, 32)
    assert sorted(b.train.y.tolist()) == list(range(100))  # fine labels, one per class
    assert len(b.test) == 100
    with pytest.raises(DatasetError, match="cifar100 train split has 200 items"):
        cifar100(root=str(tmp_path))


def test_cifar_missing_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLREPRO_DATA", str(tmp_path / "nothing"))
    with pytest.raises(DatasetError) as ei:
        cifar10()
    msg = str(ei.value)
    assert "cifar-10-batches-py" in msg and "POOLREPRO_DATA" in msg
    assert str(tmp_path / "nothing") in msg
    with pytest.raises(DatasetError, match="cifar-100-python"):
        cifar100(root=str(tmp_path))


def test_cifar_missing_batch_file(tmp_path):
    d = write_cifar10(tmp_path)
    (d / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3.*incomplete"):
        cifar10(root=str(tmp_path), allow_partial=True)


def test_cifar_corrupt_pickle(tmp_path):
    d = write_cifar10(tmp_path)
    blob = (d / "data_batch_2").read_bytes()
    (d / "data_batch_2").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(DatasetError) as ei:
        cifar10(root=str(tmp_path), allow_partial=True)
    assert "data_batch_2" in str(ei.value) and "corrupt" in str(ei.value)


def test_cifar_pickle_with_wrong_keys_or_shape(tmp_path):
    d = write_cifar10(tmp_path)
    _pickle(d / "test_batch", {b"data": np.zeros((3, 3072), np.uint8)})
    with pytest.raises(DatasetError, match="lacks the keys"):
        cifar10(root=str(tmp_path), allow_partial=True)
    _pickle(d / "test_batch", {b"data": np.zeros((3, 1000), np.uint8), b"labels": [0, 1, 2]})
    with pytest.raises(DatasetError, match="N×3072"):
        cifar10(root=str(tmp_path), allow_partial=True)
    _pickle(d / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(DatasetError, match="labels outside 0..9"):
        cifar10(root=str(tmp_path), allow_partial=True)
