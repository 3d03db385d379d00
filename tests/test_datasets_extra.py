"""TinyImageNet / ImageNet / ImageFolder and UCF-101 / HMDB-51 loaders on tiny fakes written in
the real layouts, and the Fashion-MNIST-derived ``fashion_mnist_64`` and ``moving_fashion``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import registry
from registry.datasets.base import DatasetError

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _img(path: Path, w: int = 20, h: int = 14, value: int = 0, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((h, w, 3), value, dtype=np.uint8)
    arr[:, : w // 2, 0] = 255  # a left/right edge to see the crop
    Image.fromarray(arr).convert(mode).save(path)


def _collate(ds, n=4):
    loader = torch.utils.data.DataLoader(ds, batch_size=n)
    return next(iter(loader))


# -- TinyImageNet ---------------------------------------------------------------------------
def make_tiny(root: Path, wnids=("n01", "n02", "n03"), per_class: int = 4, val: int = 6,
              write_wnids: bool = True) -> Path:
    d = root / "tiny-imagenet-200"
    for w in wnids:
        for i in range(per_class):
            _img(d / "train" / w / "images" / f"{w}_{i}.JPEG", 64, 64, value=10 * i)
        (d / "train" / w / f"{w}_boxes.txt").write_text("")
    lines = []
    for i in range(val):
        name = f"val_{i}.JPEG"
        _img(d / "val" / "images" / name, 64, 64, mode="L" if i == 0 else "RGB")
        lines.append(f"{name}\t{wnids[i % len(wnids)]}\t0\t0\t63\t63")
    (d / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    if write_wnids:
        (d / "wnids.txt").write_text("\n".join(wnids) + "\n")
    return d


def test_tiny_imagenet_fake(tmp_path: Path) -> None:
    make_tiny(tmp_path)
    with pytest.raises(DatasetError, match="expected 200.*tiny-imagenet-200"):
        registry.create_dataset("tiny_imagenet", root=str(tmp_path))
    b = registry.create_dataset("tiny_imagenet", root=str(tmp_path), allow_partial=True)
    assert b.num_classes == 3 and b.in_chans == 3 and b.input_size == (64, 64)
    assert len(b.train) == 12 and len(b.test) == 6
    assert b.train.x is None and b.train.dataset is not None
    x, y = b.test.dataset[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 64, 64) and y == 0  # grey → RGB
    xb, yb = _collate(b.train.dataset)
    assert xb.shape == (4, 3, 64, 64) and yb.dtype == torch.int64
    assert b.provenance["test_split"] == "val"


def test_tiny_imagenet_resize_subset_and_errors(tmp_path: Path) -> None:
    d = make_tiny(tmp_path, write_wnids=False)
    b = registry.create_dataset("tiny_imagenet", root=str(d), allow_partial=True,
                                image_size=32, train_subset=6, seed=1)
    assert len(b.train) == 6
    assert sorted(b.train.dataset.targets) == [0, 0, 1, 1, 2, 2]  # class-balanced
    assert b.train.dataset[0][0].shape == (3, 32, 32)
    b2 = registry.create_dataset("tiny_imagenet", root=str(d), allow_partial=True,
                                 image_size=32, train_subset=6, seed=1)
    assert b.train.dataset.items == b2.train.dataset.items  # deterministic
    with pytest.raises(DatasetError, match="TinyImageNet not found"):
        registry.create_dataset("tiny_imagenet", root=str(tmp_path / "nowhere"))
    bad = make_tiny(tmp_path / "bad")
    (bad / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(DatasetError, match="wnid"):
        registry.create_dataset("tiny_imagenet", root=str(bad), allow_partial=True)


# -- ImageNet / ImageFolder -----------------------------------------------------------------
def make_folder(root: Path, splits=("train", "val"), classes=("n001", "n002"), per: int = 3):
    for s in splits:
        for c in classes:
            for i in range(per):
                _img(root / s / c / f"{c}_{i}.JPEG", 40 + i * 7, 30)
    return root


def test_imagenet_fake(tmp_path: Path) -> None:
    make_folder(tmp_path)
    with pytest.raises(DatasetError, match="1,000 classes|expected 1,000"):
        registry.create_dataset("imagenet", root=str(tmp_path))
    b = registry.create_dataset("imagenet", root=str(tmp_path), allow_partial=True,
                                image_size=24)
    assert (b.num_classes, len(b.train), len(b.test)) == (2, 6, 6)
    xb, _ = _collate(b.train.dataset, 6)
    assert xb.shape == (6, 3, 24, 24)
    assert b.provenance["resize"] == round(24 / 0.875)
    with pytest.raises(DatasetError, match="train/<wnid>"):
        registry.create_dataset("imagenet", root=str(tmp_path / "empty"))


def test_imagefolder_fake(tmp_path: Path) -> None:
    make_folder(tmp_path, splits=("train", "test"), classes=("cat", "dog", "eel"))
    b = registry.create_dataset("imagefolder", root=str(tmp_path), image_size=16)
    assert b.num_classes == 3 and b.provenance["classes"] == ["cat", "dog", "eel"]
    assert b.train.dataset[0][0].shape == (3, 16, 16)
    with pytest.raises(DatasetError, match="expected 5"):
        registry.create_dataset("imagefolder", root=str(tmp_path), num_classes=5)


# -- UCF-101 / HMDB-51 ----------------------------------------------------------------------
def _video(d: Path, n_frames: int) -> None:
    for f in range(1, n_frames + 1):
        _img(d / f"frame_{f:04d}.jpg", 32, 24, value=f)


def test_video_presplit_layout(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("test", 1)):
        for c in ("Archery", "Basketball"):
            for v in range(n):
                _video(tmp_path / split / c / f"v_{c}_g{v:02d}_c01", 5 + v)
    with pytest.raises(DatasetError, match="expected 101.*frame_0001"):
        registry.create_dataset("ucf101", root=str(tmp_path))
    b = registry.create_dataset("ucf101", root=str(tmp_path), allow_partial=True, frames=4,
                                image_size=16)
    assert b.num_classes == 2 and b.input_size == (4, 16, 16)
    assert (len(b.train), len(b.test)) == (6, 2)
    x, y = b.train.dataset[0]
    assert x.shape == (3, 4, 16, 16) and x.dtype == torch.uint8
    xb, yb = _collate(b.train.dataset, 3)
    assert xb.shape == (3, 3, 4, 16, 16)
    # a video with fewer frames than T repeats frames; positions are evenly spaced
    from registry.datasets.video_frames import ClipItems
    assert ClipItems.positions(10, 4) == [1, 3, 6, 8]
    assert ClipItems.positions(2, 4) == [0, 0, 1, 1]


def test_ucf101_official_split_lists(tmp_path: Path) -> None:
    classes = ["ApplyEyeMakeup", "Archery"]
    lst = tmp_path / "ucfTrainTestlist"
    lst.mkdir()
    (lst / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train, test = [], []
    for c in classes:
        for g in range(3):
            vid = f"v_{c}_g{g:02d}_c01"
            _video(tmp_path / "frames" / c / vid, 3)
            (test if g == 0 else train).append(f"{c}/{vid}.avi")
    (lst / "trainlist01.txt").write_text("".join(f"{t} {1 + (t[0] == 'A')}\n" for t in train))
    (lst / "testlist01.txt").write_text("\n".join(test) + "\n")
    with pytest.raises(DatasetError, match="9,537"):
        registry.create_dataset("ucf101", root=str(tmp_path))
    b = registry.create_dataset("ucf101", root=str(tmp_path), allow_partial=True, frames=2,
                                image_size=8)
    assert (len(b.train), len(b.test)) == (4, 2)
    assert b.provenance["layout"] == "official split 1"
    # a listed video without frames is named
    (lst / "testlist01.txt").write_text("Archery/v_Archery_g09_c01.avi\n")
    registry.datasets.video_frames._index.cache_clear()
    with pytest.raises(DatasetError, match="v_Archery_g09_c01"):
        registry.create_dataset("ucf101", root=str(tmp_path), allow_partial=True)


def test_hmdb51_official_split_lists(tmp_path: Path) -> None:
    classes = ["brush_hair", "cartwheel", "catch"]
    lst = tmp_path / "testTrainMulti_7030_splits"
    lst.mkdir()
    for c in classes:
        lines = []
        for i, tag in enumerate(("1", "1", "2", "0")):
            vid = f"{c}_clip{i}"
            _video(tmp_path / "frames" / c / vid, 2)
            lines.append(f"{vid}.avi {tag} ")
        (lst / f"{c}_test_split1.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="expected 3,570"):
        registry.create_dataset("hmdb51", root=str(tmp_path))
    b = registry.create_dataset("hmdb51", root=str(tmp_path), allow_partial=True, frames=3,
                                image_size=8, train_subset=3)
    assert b.num_classes == 3 and len(b.train) == 3 and len(b.test) == 3
    assert sorted(b.train.dataset.targets) == [0, 1, 2]
    with pytest.raises(DatasetError, match="split list"):
        registry.create_dataset("hmdb51", root=str(tmp_path), allow_partial=True, split=2)


# -- derived from Fashion-MNIST -------------------------------------------------------------
needs_fmnist = pytest.mark.skipif(not FMNIST.is_file(), reason="dataset-fashion-mnist missing")


@needs_fmnist
def test_fashion_mnist_64() -> None:
    b = registry.create_dataset("fashion_mnist_64", train_subset=40, test_subset=20, seed=3)
    assert b.train.x.shape == (40, 3, 64, 64) and b.train.x.dtype == torch.uint8
    assert b.input_size == (64, 64) and b.in_chans == 3 and b.num_classes == 10
    assert b.train.x[:, :, :4].max() == 0 and b.train.x[:, :, -4:].max() == 0  # padded border
    assert torch.equal(b.train.x[:, 0], b.train.x[:, 2])
    base = registry.create_dataset("fashion_mnist", train_subset=40, test_subset=20, seed=3)
    assert torch.equal(b.train.y, base.train.y)
    again = registry.create_dataset("fashion_mnist_64", train_subset=40, test_subset=20, seed=3)
    assert torch.equal(b.train.x, again.train.x)
    x = b.train.x.float() / 255
    assert abs(x.mean().item() - b.mean[0]) < 0.05


@needs_fmnist
def test_moving_fashion() -> None:
    b = registry.create_dataset("moving_fashion", train_subset=30, test_subset=10, seed=1)
    x = b.train.x
    assert x.shape == (30, 3, 8, 64, 64) and x.dtype == torch.uint8
    assert b.input_size == (8, 64, 64) and b.num_classes == 10
    # the whole item is on the canvas in every frame, and it moves
    sums = x[:, 0].flatten(2).sum(-1)
    assert (sums == sums[:, :1]).all()
    assert (x[:, 0, 0] != x[:, 0, -1]).flatten(1).any(1).all()
    base = registry.create_dataset("fashion_mnist", train_subset=30, test_subset=10, seed=1)
    assert torch.equal(b.train.y, base.train.y)
    assert torch.equal(sums[:, 0], base.train.x.flatten(1).sum(1))
    again = registry.create_dataset("moving_fashion", train_subset=30, test_subset=10, seed=1)
    assert torch.equal(x, again.train.x)
    other = registry.create_dataset("moving_fashion", train_subset=30, test_subset=10, seed=2)
    assert not torch.equal(x, other.train.x)
    # a video model consumes it as is
    model = registry.create_model("test_video", num_classes=10)
    assert model(x[:2].float() / 255).shape == (2, 10)
