"""Action recognition sets from a user's directory of extracted frames: UCF-101, HMDB-51.

Nothing is downloaded or decoded from video files: extract the frames yourself (e.g.
``ffmpeg -i v_X.avi <out>/frame_%04d.jpg``). Two layouts are accepted:

A. already split (any frame rate / count)::

       <root>/train/<class>/<video_id>/frame_0001.jpg, frame_0002.jpg, ...
       <root>/test/<class>/<video_id>/frame_0001.jpg, ...

B. all videos plus the official split lists (``split=1|2|3``)::

       <root>/frames/<class>/<video_id>/frame_0001.jpg, ...     (<video_id> = file name
                                                                 without .avi)
       UCF-101: <root>/ucfTrainTestlist/{classInd.txt, trainlist0<k>.txt, testlist0<k>.txt}
       HMDB-51: <root>/testTrainMulti_7030_splits/<class>_test_split<k>.txt
                 ("<video>.avi 1" = train, "2" = test, "0" = unused)

Frames are any image files sorted by name. Checks before training: the class count (101 / 51)
and, for the official splits, the number of videos (UCF-101 split 1/2/3: 9,537/9,586/9,624
train and 3,783/3,734/3,696 test; HMDB-51: 3,570 train and 1,530 test per split), every listed
video present with at least one frame; ``allow_partial=True`` accepts other counts.

Items (:class:`ClipItems`) are ``(uint8 [3, T, S, S], label)``: ``frames`` frames (``T``)
taken at evenly spaced positions over the whole video (deterministic; a video shorter than
``T`` repeats frames), each resized (shorter side → ``max(resize, image_size)``) and
centre-cropped to ``image_size``. Random crops/flips are the training task's batched augmentation.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from registry.datasets.base import DataBundle, DatasetError, Split, balanced_indices, data_root
from registry.datasets.imagefolder import _class_dirs as _subdirs
from registry.datasets.imagefolder import _images_in, load_image

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's video-model normalisation
KINETICS_STD = (0.22803, 0.22145, 0.216989)

SPECS = {
    "ucf101": dict(
        title="UCF-101", classes=101, list_dir="ucfTrainTestlist",
        counts={1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)},
        lists="ucfTrainTestlist/{classInd.txt, trainlist0<k>.txt, testlist0<k>.txt}"),
    "hmdb51": dict(
        title="HMDB-51", classes=51, list_dir="testTrainMulti_7030_splits",
        counts={1: (3570, 1530), 2: (3570, 1530), 3: (3570, 1530)},
        lists="testTrainMulti_7030_splits/<class>_test_split<k>.txt"),
}


def _layout(name: str) -> str:
    s = SPECS[name]
    return (f"either <root>/{{train,test}}/<class>/<video_id>/<frame>.jpg (frames sorted by "
            f"name, e.g. frame_0001.jpg), or "
            f"<root>/frames/<class>/<video_id>/<frame>.jpg with the official split lists "
            f"<root>/{s['lists']}")


def _frames_of(d: Path) -> list[str]:
    return _images_in(d) if d.is_dir() else []


class ClipItems(torch.utils.data.Dataset):
    """``(uint8 [3, T, S, S], label)`` clips from a list of ``(frame paths, label)``."""

    def __init__(self, videos: list[tuple[tuple[str, ...], int]], frames: int, image_size: int,
                 resize: int | None = None):
        self.videos = videos
        self.frames, self.image_size = int(frames), int(image_size)
        self.resize = max(int(resize or 0), self.image_size)

    def __len__(self) -> int:
        return len(self.videos)

    @staticmethod
    def positions(n: int, t: int) -> list[int]:
        """Evenly spaced frame indices: the centres of ``t`` equal segments of ``n`` frames."""
        return [min(n - 1, int((i + 0.5) * n / t)) for i in range(t)]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        paths, label = self.videos[i]
        idx = self.positions(len(paths), self.frames)
        clip = torch.stack([load_image(paths[j], self.image_size, self.resize) for j in idx], 1)
        return clip, label

    @property
    def targets(self) -> list[int]:
        return [y for _, y in self.videos]


def _read_official(root: Path, name: str, split: int, classes: list[str]
                   ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(class, video_id) pairs of the official train and test lists."""
    spec = SPECS[name]
    ldir = root / spec["list_dir"]
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []

    def vid(s: str) -> str:
        return os.path.splitext(os.path.basename(s))[0]

    if name == "ucf101":
        for fname, out in ((f"trainlist0{split}.txt", train), (f"testlist0{split}.txt", test)):
            f = ldir / fname
            if not f.is_file():
                raise DatasetError(f"UCF-101: missing split list {f}. Expected: {_layout(name)}")
            for line in f.read_text().splitlines():
                if line.strip():
                    rel = line.split()[0]
                    out.append((rel.split("/")[0], vid(rel)))
    else:
        for c in classes:
            f = ldir / f"{c}_test_split{split}.txt"
            if not f.is_file():
                raise DatasetError(f"HMDB-51: missing split list {f}. Expected: {_layout(name)}")
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[1] in ("1", "2"):
                    (train if parts[1] == "1" else test).append((c, vid(parts[0])))
    return train, test


@lru_cache(maxsize=8)
def _index(name: str, d: str, split: int, allow_partial: bool):
    spec = SPECS[name]
    title = spec["title"]
    root = Path(d)
    layout = _layout(name)

    def check(what: str, got: int, expected: int) -> None:
        if got != expected and not allow_partial:
            raise DatasetError(
                f"{title}: found {got:,} {what}, expected {expected:,}. Expected layout: "
                f"{layout}. If this copy is deliberately different, pass "
                f"dataset_args.allow_partial = true.")

    if (root / "train").is_dir() and (root / "test").is_dir():
        kind = "presplit"
        classes = _subdirs(root / "train")
        pairs = {s: [(c, v) for c in _subdirs(root / s) for v in _subdirs(root / s / c)]
                 for s in ("train", "test")}
        frame_root = {"train": root / "train", "test": root / "test"}
        unknown = {c for c, _ in pairs["test"]} - set(classes)
        if unknown:
            raise DatasetError(f"{title}: test/ has classes not in train/: "
                               f"{sorted(unknown)[:5]}. Expected layout: {layout}")
    elif (root / "frames").is_dir():
        kind = f"official split {split}"
        if split not in (1, 2, 3):
            raise DatasetError(f"{title}: split must be 1, 2 or 3, not {split}")
        classes = _subdirs(root / "frames")
        if name == "ucf101" and (root / spec["list_dir"] / "classInd.txt").is_file():
            ind = (root / spec["list_dir"] / "classInd.txt").read_text().split()
            classes = [c for _, c in sorted(zip(map(int, ind[0::2]), ind[1::2], strict=True))]
        train, test = _read_official(root, name, split, classes)
        pairs = {"train": train, "test": test}
        frame_root = {"train": root / "frames", "test": root / "frames"}
        exp_train, exp_test = spec["counts"][split]
        check("train videos in the split list", len(train), exp_train)
        check("test videos in the split list", len(test), exp_test)
    else:
        raise DatasetError(f"{title} not found under {root}. Expected layout: {layout}. Pass "
                           f"dataset_args.root or set POOLREPRO_DATA.")
    check("classes", len(classes), spec["classes"])
    if not classes:
        raise DatasetError(f"{title}: no class directories under {root}. Expected: {layout}")
    cls = {c: i for i, c in enumerate(classes)}
    out = {}
    for s in ("train", "test"):
        videos = []
        for c, v in pairs[s]:
            if c not in cls:
                raise DatasetError(f"{title}: {s} list names class {c!r}, which has no "
                                   f"directory. Expected layout: {layout}")
            frames = _frames_of(frame_root[s] / c / v)
            if not frames:
                raise DatasetError(f"{title}: video {c}/{v} ({s}) has no frames in "
                                   f"{frame_root[s] / c / v}. Expected layout: {layout}")
            videos.append((tuple(frames), cls[c]))
        if not videos:
            raise DatasetError(f"{title}: no {s} videos under {root}. Expected layout: {layout}")
        out[s] = videos
    return classes, out["train"], out["test"], kind


def _load(name: str, root, train_subset, test_subset, seed, frames, image_size, resize,
          split, allow_partial) -> DataBundle:
    d = data_root(root, name)
    classes, train, test, kind = _index(name, str(d), int(split), bool(allow_partial))
    n = len(classes)

    def sub(videos, k, s):
        idx = balanced_indices([y for _, y in videos], k, s, n)
        return Split(None, None, ClipItems([videos[i] for i in idx], frames, image_size, resize))

    return DataBundle(
        name=name, num_classes=n, in_chans=3, input_size=(frames, image_size, image_size),
        mean=KINETICS_MEAN, std=KINETICS_STD,
        train=sub(train, train_subset, seed), test=sub(test, test_subset, seed + 1),
        provenance={"source": str(d), "layout": kind, "train_items": len(train),
                    "test_items": len(test), "frames": frames, "image_size": image_size,
                    "frame_sampling": "evenly spaced segment centres", "classes": classes},
    )


def ucf101(root: str | None = None, train_subset: int | None = None,
           test_subset: int | None = None, seed: int = 0, frames: int = 16,
           image_size: int = 112, resize: int | None = 128, split: int = 1,
           allow_partial: bool = False) -> DataBundle:
    """UCF-101 (Soomro et al. 2012) from extracted frames; see the module docstring."""
    return _load("ucf101", root, train_subset, test_subset, seed, frames, image_size, resize,
                 split, allow_partial)


def hmdb51(root: str | None = None, train_subset: int | None = None,
           test_subset: int | None = None, seed: int = 0, frames: int = 16,
           image_size: int = 112, resize: int | None = 128, split: int = 1,
           allow_partial: bool = False) -> DataBundle:
    """HMDB-51 (Kuehne et al. 2011) from extracted frames; see the module docstring."""
    return _load("hmdb51", root, train_subset, test_subset, seed, frames, image_size, resize,
                 split, allow_partial)
