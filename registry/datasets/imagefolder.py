"""Image classification sets from a user's directory: TinyImageNet, ImageNet, any ImageFolder.

Nothing is downloaded. Each loader checks the layout, the class count and the image count
before training and raises :class:`DatasetError` naming the expected layout when they are
wrong (``allow_partial=True`` accepts other counts, e.g. a deliberately reduced copy).
Splits are item-decoding datasets (:class:`ImageItems`) yielding ``(uint8 [3, S, S], label)``:
each image is decoded with PIL, converted to RGB, its shorter side resized to ``resize``
(bilinear) and centre-cropped to ``image_size``, so every item has the same shape and batches
collate. Random crops/flips are the training task's batched augmentation.

Layouts
-------
TinyImageNet (the official ``tiny-imagenet-200.zip``, extracted)::

    <root>/tiny-imagenet-200/            (or <root> itself)
        wnids.txt                        200 WordNet ids, one a line (optional: else the
                                         sorted train/ sub-directories)
        train/<wnid>/images/<wnid>_<i>.JPEG     500 per class (100,000)
        val/images/val_<i>.JPEG                 10,000
        val/val_annotations.txt          "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>" per line

  The labelled ``val`` split is the test split (the official ``test`` has no labels), as in
  S3Net's ``Tiny_S3Net.py``.

ImageNet (ILSVRC-2012 in the ImageFolder layout, i.e. val already sorted into class dirs)::

    <root>/train/<wnid>/*.JPEG           1,000 classes, 1,281,167 images
    <root>/val/<wnid>/*.JPEG             1,000 classes, 50,000 images

``imagefolder``: any ``<root>/<train>/<class>/*`` + ``<root>/<test>/<class>/*`` tree.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from registry.datasets.base import DataBundle, DatasetError, Split, balanced_indices, data_root

IMAGE_EXTS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TINY_COUNTS = {"classes": 200, "train": 100_000, "test": 10_000}
IMAGENET_COUNTS = {"classes": 1000, "train": 1_281_167, "test": 50_000}

TINY_LAYOUT = (
    "<root>/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, "
    "val/val_annotations.txt} — the official tiny-imagenet-200.zip extracted "
    "(http://cs231n.stanford.edu/tiny-imagenet-200.zip; download it yourself)")
IMAGENET_LAYOUT = (
    "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (ILSVRC-2012 with the validation "
    "images sorted into one directory per class, e.g. by the usual valprep.sh)")


def load_image(path: str, image_size: int, resize: int) -> torch.Tensor:
    """Decode ``path`` to uint8 ``[3, image_size, image_size]``: RGB, shorter side →
    ``resize`` (bilinear), centre crop."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = resize / min(w, h)
            nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), Image.BILINEAR)
            left, top = (nw - image_size) // 2, (nh - image_size) // 2
            im = im.crop((left, top, left + image_size, top + image_size))
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot decode image {path}: {e}") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class ImageItems(torch.utils.data.Dataset):
    """``(uint8 [3, S, S], label)`` items from a list of ``(path, label)``."""

    def __init__(self, items: list[tuple[str, int]], image_size: int, resize: int | None = None):
        self.items = items
        self.image_size = int(image_size)
        self.resize = int(resize) if resize else self.image_size
        if self.resize < self.image_size:
            raise DatasetError(f"resize ({self.resize}) must be ≥ image_size ({self.image_size})")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[i]
        return load_image(path, self.image_size, self.resize), label

    @property
    def targets(self) -> list[int]:
        return [y for _, y in self.items]


def item_split(items: list[tuple[str, int]], n: int | None, seed: int, num_classes: int,
               image_size: int, resize: int | None) -> Split:
    idx = balanced_indices([y for _, y in items], n, seed, num_classes)
    return Split(None, None, ImageItems([items[i] for i in idx], image_size, resize))


def _images_in(d: Path) -> list[str]:
    with os.scandir(d) as it:
        return sorted(e.path for e in it
                      if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTS)


def _class_dirs(d: Path) -> list[str]:
    with os.scandir(d) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def _check(name: str, what: str, got: int, expected: int, layout: str,
           allow_partial: bool) -> None:
    if got != expected and not allow_partial:
        raise DatasetError(
            f"{name}: found {got:,} {what}, expected {expected:,}. Expected layout: {layout}. "
            f"If this copy is deliberately different, pass dataset_args.allow_partial = true.")


# -- TinyImageNet ----------------------------------------------------------------------------
def _tiny_dir(root: str | os.PathLike | None) -> Path:
    base = data_root(root, "")
    for cand in (base / "tiny-imagenet-200", base):
        if (cand / "train").is_dir() and (cand / "val").is_dir():
            return cand
    raise DatasetError(f"TinyImageNet not found under {base}. Expected layout: {TINY_LAYOUT}. "
                       f"Pass dataset_args.root or set POOLREPRO_DATA.")


@lru_cache(maxsize=4)
def _tiny_index(d: str, allow_partial: bool):
    root = Path(d)
    train_dir = root / "train"
    if (root / "wnids.txt").is_file():
        wnids = [w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()]
    else:
        wnids = _class_dirs(train_dir)
    _check("TinyImageNet", "classes", len(wnids), TINY_COUNTS["classes"], TINY_LAYOUT,
           allow_partial)
    if not wnids:
        raise DatasetError(f"TinyImageNet: no classes in {train_dir}. Expected: {TINY_LAYOUT}")
    cls = {w: i for i, w in enumerate(wnids)}
    train: list[tuple[str, int]] = []
    for w in wnids:
        img_dir = train_dir / w / "images"
        if not img_dir.is_dir():
            raise DatasetError(f"TinyImageNet: missing {img_dir}. Expected layout: {TINY_LAYOUT}")
        train += [(p, cls[w]) for p in _images_in(img_dir)]
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise DatasetError(f"TinyImageNet: missing {ann}. Expected layout: {TINY_LAYOUT}")
    test: list[tuple[str, int]] = []
    for ln, line in enumerate(ann.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or parts[1] not in cls:
            raise DatasetError(f"{ann}:{ln}: expected '<file> <wnid> ...' with a wnid of "
                               f"wnids.txt, got {line!r}")
        path = root / "val" / "images" / parts[0]
        if not path.is_file():
            raise DatasetError(f"TinyImageNet: {ann} lists {parts[0]} but {path} is missing")
        test.append((str(path), cls[parts[1]]))
    _check("TinyImageNet", "train images", len(train), TINY_COUNTS["train"], TINY_LAYOUT,
           allow_partial)
    _check("TinyImageNet", "val images", len(test), TINY_COUNTS["test"], TINY_LAYOUT,
           allow_partial)
    return wnids, train, test


def tiny_imagenet(root: str | None = None, train_subset: int | None = None,
                  test_subset: int | None = None, seed: int = 0, image_size: int = 64,
                  resize: int | None = None, allow_partial: bool = False) -> DataBundle:
    """TinyImageNet-200 (64×64 natively; ``image_size=224`` as S3Net's Table IV recipe).
    The labelled val split serves as the test split."""
    d = _tiny_dir(root)
    wnids, train, test = _tiny_index(str(d), allow_partial)
    n = len(wnids)
    return DataBundle(
        name="tiny_imagenet", num_classes=n, in_chans=3, input_size=(image_size, image_size),
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
        train=item_split(train, train_subset, seed, n, image_size, resize),
        test=item_split(test, test_subset, seed + 1, n, image_size, resize),
        provenance={"source": str(d), "train_items": len(train), "test_items": len(test),
                    "test_split": "val", "image_size": image_size,
                    "resize": resize or image_size, "classes": list(wnids)},
    )


# -- ImageNet / generic ImageFolder ----------------------------------------------------------
@lru_cache(maxsize=4)
def _folder_index(d: str, train_name: str, test_name: str, layout: str):
    root = Path(d)
    for s in (train_name, test_name):
        if not (root / s).is_dir():
            raise DatasetError(f"{root / s} does not exist. Expected layout: {layout}. Pass "
                               f"dataset_args.root or set POOLREPRO_DATA.")
    classes = _class_dirs(root / train_name)
    test_classes = _class_dirs(root / test_name)
    if not classes:
        raise DatasetError(f"no class directories in {root / train_name}. Expected: {layout}")
    if set(test_classes) - set(classes):
        extra = sorted(set(test_classes) - set(classes))[:5]
        raise DatasetError(f"{root / test_name} has classes not in {train_name}/: {extra}. "
                           f"Expected layout: {layout}")
    cls = {c: i for i, c in enumerate(classes)}
    splits = {}
    for s in (train_name, test_name):
        items: list[tuple[str, int]] = []
        for c in _class_dirs(root / s):
            items += [(p, cls[c]) for p in _images_in(root / s / c)]
        if not items:
            raise DatasetError(f"no images in {root / s}/<class>/. Expected layout: {layout}")
        splits[s] = items
    return classes, splits[train_name], splits[test_name]


def imagenet(root: str | None = None, train_subset: int | None = None,
             test_subset: int | None = None, seed: int = 0, image_size: int = 224,
             resize: int | None = None, allow_partial: bool = False) -> DataBundle:
    """ILSVRC-2012 from an ImageFolder tree; test split = val. Items are resized (shorter side
    to ``resize``, default ``round(image_size / 0.875)``: 256 for 224) and centre-cropped."""
    d = data_root(root, "imagenet")
    classes, train, test = _folder_index(str(d), "train", "val", IMAGENET_LAYOUT)
    _check("ImageNet", "classes", len(classes), IMAGENET_COUNTS["classes"], IMAGENET_LAYOUT,
           allow_partial)
    _check("ImageNet", "train images", len(train), IMAGENET_COUNTS["train"], IMAGENET_LAYOUT,
           allow_partial)
    _check("ImageNet", "val images", len(test), IMAGENET_COUNTS["test"], IMAGENET_LAYOUT,
           allow_partial)
    rs = resize or round(image_size / 0.875)
    n = len(classes)
    return DataBundle(
        name="imagenet", num_classes=n, in_chans=3, input_size=(image_size, image_size),
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
        train=item_split(train, train_subset, seed, n, image_size, rs),
        test=item_split(test, test_subset, seed + 1, n, image_size, rs),
        provenance={"source": str(d), "train_items": len(train), "test_items": len(test),
                    "test_split": "val", "image_size": image_size, "resize": rs},
    )


def imagefolder(root: str, train_subset: int | None = None, test_subset: int | None = None,
                seed: int = 0, image_size: int = 64, resize: int | None = None,
                train_dir: str = "train", test_dir: str = "test",
                num_classes: int | None = None,
                mean: tuple[float, ...] = IMAGENET_MEAN,
                std: tuple[float, ...] = IMAGENET_STD) -> DataBundle:
    """Any ``<root>/<train_dir>/<class>/*`` + ``<root>/<test_dir>/<class>/*`` tree; classes
    are the sorted train sub-directories (``num_classes`` checks their count)."""
    if root is None:
        raise DatasetError("imagefolder needs dataset_args.root")
    layout = f"<root>/{train_dir}/<class>/<image> and <root>/{test_dir}/<class>/<image>"
    d = Path(root).expanduser()
    classes, train, test = _folder_index(str(d), train_dir, test_dir, layout)
    if num_classes is not None:
        _check(f"imagefolder {d}", "classes", len(classes), num_classes, layout, False)
    n = len(classes)
    return DataBundle(
        name="imagefolder", num_classes=n, in_chans=3, input_size=(image_size, image_size),
        mean=tuple(mean), std=tuple(std),
        train=item_split(train, train_subset, seed, n, image_size, resize),
        test=item_split(test, test_subset, seed + 1, n, image_size, resize),
        provenance={"source": str(d), "train_items": len(train), "test_items": len(test),
                    "image_size": image_size, "classes": classes},
    )
