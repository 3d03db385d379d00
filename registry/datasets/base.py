"""What every dataset factory returns, and the checks every loader shares.

Images are kept as ``uint8`` tensors ``[N, C, H, W]`` (``[N, C, T, H, W]`` for video) so a
whole mini-tier dataset lives in memory and augmentation runs batched on the device
(see ``tasks/augment.py``). Datasets too large for memory (ImageNet) give a
``torch.utils.data.Dataset`` whose items are ``(uint8 tensor, label)`` instead.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


class DatasetError(RuntimeError):
    """A dataset that is missing, malformed or not what it claims to be.

    The worker records a run that fails with this error as ``skipped`` (not ``error``): the
    recipe is fine, the data is not on this machine. The message says what to do.
    """


def data_root(root: str | os.PathLike | None, default_subdir: str) -> Path:
    """The directory to read: ``root`` if given, else ``$POOLREPRO_DATA/<default_subdir>``,
    else ``~/.cache/poolrepro/data/<default_subdir>``."""
    if root is not None:
        return Path(root).expanduser()
    base = os.environ.get("POOLREPRO_DATA", "~/.cache/poolrepro/data")
    return Path(base).expanduser() / default_subdir


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Split:
    """One split: in-memory tensors (``x`` uint8, ``y`` int64) or an item-decoding ``dataset``."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    dataset: Any = None  # torch.utils.data.Dataset yielding (uint8 tensor, int label)

    def __len__(self) -> int:
        if self.x is not None:
            return int(self.x.shape[0])
        return len(self.dataset)

    @property
    def in_memory(self) -> bool:
        return self.x is not None


@dataclass
class DataBundle:
    """A dataset ready for training: both splits plus what a model and a recipe need to know."""

    name: str
    num_classes: int
    in_chans: int
    input_size: tuple[int, ...]  # (H, W) for images, (T, H, W) for video
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]
    train: Split
    test: Split
    provenance: dict[str, Any] = field(default_factory=dict)


def balanced_indices(labels, n: int | None, seed: int, num_classes: int) -> list[int]:
    """A class-balanced, seeded choice of ``n`` indices into ``labels`` (all when ``n`` is
    None). The same ``(n, seed)`` always picks the same items, so the mini tier is one fixed
    dataset. Raises :class:`DatasetError` when a class has too few items for its share."""
    if n is None or n >= len(labels):
        return list(range(len(labels)))
    if n <= 0:
        raise DatasetError(f"subset size must be positive, got {n}")
    y = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(y == c).flatten() for c in range(num_classes)]
    per_class = [p[torch.randperm(len(p), generator=g)] for p in per_class]
    quota, extra = divmod(n, num_classes)
    want = [quota + (1 if c < extra else 0) for c in range(num_classes)]
    short = [c for c, p in enumerate(per_class) if len(p) < want[c]]
    if short:
        raise DatasetError(
            f"a class-balanced subset of {n} needs {max(want)} items per class, but classes "
            f"{short} have fewer ({[len(per_class[c]) for c in short]}); use a smaller "
            f"subset or the full dataset"
        )
    idx = torch.cat([p[: want[c]] for c, p in enumerate(per_class)])
    return idx[torch.randperm(len(idx), generator=g)].tolist()


def balanced_subset(split: Split, n: int | None, seed: int, num_classes: int) -> Split:
    """A class-balanced, seeded subset of ``n`` items (all of them when ``n`` is None).

    The same ``(n, seed)`` always picks the same items, so the mini tier is one fixed dataset.
    """
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise DatasetError(f"subset size must be positive, got {n}")
    if not split.in_memory:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(split), generator=g)[:n].tolist()
        return Split(None, None, torch.utils.data.Subset(split.dataset, idx))
    idx = torch.tensor(balanced_indices(split.y, n, seed, num_classes))
    return Split(split.x[idx].contiguous(), split.y[idx].contiguous())


def split_labels(split: Split) -> list[int]:
    """The label of every item of ``split``, in order (item datasets expose ``targets``)."""
    if split.in_memory:
        return split.y.tolist()
    ds = split.dataset
    if isinstance(ds, torch.utils.data.Subset):
        inner = split_labels(Split(None, None, ds.dataset))
        return [inner[i] for i in ds.indices]
    targets = getattr(ds, "targets", None)
    if targets is None:
        raise DatasetError(f"{type(ds).__name__} exposes no `targets`, so a class-balanced "
                           f"held-out split cannot be drawn from it")
    return [int(t) for t in targets]


def holdout(split: Split, n: int, seed: int, num_classes: int
            ) -> tuple[Split, Split, list[int]]:
    """Split ``split`` into ``(rest, held_out, held_indices)``: ``n`` class-balanced, seeded
    items held out (e.g. a validation split carved from the training set) and the rest in
    their original order. The two parts are disjoint and together are the whole split."""
    if not 0 < n < len(split):
        raise DatasetError(f"a held-out split needs 0 < n < {len(split)} items, got {n}")
    held = balanced_indices(split_labels(split), n, seed, num_classes)
    chosen = set(held)
    rest = [i for i in range(len(split)) if i not in chosen]
    if split.in_memory:
        r, h = torch.tensor(rest), torch.tensor(held)
        return (Split(split.x[r].contiguous(), split.y[r].contiguous()),
                Split(split.x[h].contiguous(), split.y[h].contiguous()), held)
    subset = torch.utils.data.Subset
    return (Split(None, None, subset(split.dataset, rest)),
            Split(None, None, subset(split.dataset, held)), held)


def check_count(name: str, split: str, got: int, expected: int, allow_partial: bool) -> None:
    if got != expected and not allow_partial:
        raise DatasetError(
            f"{name} {split} split has {got} items, expected {expected}. The copy is incomplete or "
            f"not the official release; re-extract it, or pass dataset_args.allow_partial = true "
            f"to use it anyway."
        )
