"""The FFCV loader of a prepared ``.beton`` and the choice between loaders.

:class:`FFCVLoader` yields what :class:`tasks.train_eval.TensorLoader` yields: uint8 batches
``[B, C, H, W]`` (``[B, C, T, H, W]`` for video) and int64 labels, in the *same order* (a
``torch.randperm`` of a seeded generator, drawn once per epoch, exposed as ``.g`` so a
resumed run continues the sequence). Decoding runs in FFCV's compiled, multithreaded
pipeline ahead of the training step; on CUDA the batch is copied to the device by FFCV
(``ToDevice``, pinned memory, its own stream) and the recipe's augmentation then runs there
(``tasks.augment.augment_batch``, as on the tensor path), so switching loaders changes
speed, not the recipe.

:func:`choose_loader` implements ``params.loader``:

* ``ffcv``: the split's prepared ``.beton`` (found by content fingerprint, verified), else a
  :class:`DatasetError` saying how to prepare it or how to install FFCV;
* ``tensor``: in-memory data, batched by index (:class:`TensorLoader`);
* ``torch``: ``torch.utils.data.DataLoader`` over the split's Dataset;
* ``auto``: FFCV when it imports and the split has a prepared ``.beton``; otherwise the
  tensor path for in-memory data and the DataLoader for the rest.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from registry.datasets import beton
from registry.datasets.base import DatasetError, Split

CHOICES = ("auto", "ffcv", "tensor", "torch")


class _TorchOrder:
    """FFCV traversal order drawing each epoch's permutation from the owner's generator."""

    def __init__(self, n: int, shuffle: bool, g: torch.Generator):
        self.n, self.shuffle, self.g = n, shuffle, g

    def sample_order(self, epoch: int) -> np.ndarray:
        order = torch.randperm(self.n, generator=self.g) if self.shuffle else torch.arange(self.n)
        return order.numpy().astype(np.uint64)


class FFCVLoader:
    """Batches of a ``.beton`` written by :func:`registry.datasets.beton.prepare`."""

    def __init__(self, path: str | os.PathLike, batch_size: int, shuffle: bool, seed: int,
                 drop_last: bool = False, device: str | torch.device = "cpu",
                 num_threads: int | None = None, batches_ahead: int = 3):
        from ffcv.fields.decoders import IntDecoder, NDArrayDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import ToDevice, ToTensor

        self.path = Path(path)
        self.device = torch.device(device)
        self.g = torch.Generator().manual_seed(seed)
        image: list[Any] = [NDArrayDecoder(), ToTensor()]
        label: list[Any] = [IntDecoder(), ToTensor()]
        if self.device.type == "cuda":
            image.append(ToDevice(self.device, non_blocking=True))
            label.append(ToDevice(self.device, non_blocking=True))
        # FFCV sets torch's CPU thread count to its number of decoding threads (at each
        # epoch, from its loader thread): by default the two are the same, the process's.
        threads = int(num_threads or torch.get_num_threads())
        self.loader = Loader(str(self.path), batch_size=batch_size, num_workers=threads,
                             order=OrderOption.SEQUENTIAL, os_cache=True,
                             pipelines={"image": image, "label": label},
                             batches_ahead=batches_ahead)
        n = int(self.loader.reader.num_samples)
        self.n, self.bs = n, batch_size
        self.drop_last = bool(drop_last and n >= batch_size)
        self.loader.drop_last = self.drop_last
        self.loader.traversal_order = _TorchOrder(n, shuffle, self.g)

    def __len__(self) -> int:
        return self.n // self.bs if self.drop_last else math.ceil(self.n / self.bs)

    def __iter__(self):
        # FFCV reuses its output buffers a few batches later: a batch is valid until the
        # next few have been drawn, which is how a training loop consumes it.
        for x, y in self.loader:
            yield x, y.view(-1).long()


def _fallback(split: Split, why: str) -> tuple[str, str, None]:
    if split.in_memory:
        return "tensor", f"{why}; in-memory data, batched augmentation on the device", None
    return "torch", f"{why}; torch DataLoader over the dataset", None


def choose_loader(choice: str, split: Split, provenance: dict[str, Any] | None = None
                  ) -> tuple[str, str, Path | None]:
    """``(kind, reason, beton path or None)`` for ``params.loader = choice``."""
    if choice not in CHOICES:
        raise ValueError(f"params.loader must be one of {', '.join(CHOICES)}; got {choice!r}")
    if choice == "tensor":
        if not split.in_memory:
            raise ValueError("params.loader = 'tensor' needs an in-memory dataset; use 'torch' "
                             "or 'ffcv'")
        return "tensor", "params.loader = 'tensor'", None
    if choice == "torch":
        return "torch", "params.loader = 'torch'", None
    if choice == "ffcv":
        beton.import_ffcv()  # DatasetError with the install hint
        path, _, note = beton.find_beton(split, provenance)
        if path is None:
            raise DatasetError(
                f"params.loader = 'ffcv' but this split has no prepared .beton ({note}). Run "
                f"`python -m suite data prepare DATASET --dataset-arg KEY=VALUE ...` with this "
                f"run's dataset and dataset_args (or `python -m suite data prepare --tier "
                f"TIER`), with $POOLREPRO_CACHE pointing where it was prepared; or set "
                f"params.loader = 'auto'.")
        return "ffcv", f"params.loader = 'ffcv'; {note}", path
    # auto
    if not beton.ffcv_installed():
        return _fallback(split, "auto: ffcv is not installed (pip install 'poolrepro[ffcv]' "
                                "and `python -m suite data prepare` to use it)")
    # look for a file first: importing ffcv costs seconds, a run without one pays nothing
    path, manifest, note = beton.find_beton(split, provenance, verify=False)
    if path is None:
        return _fallback(split, f"auto: {note} (`python -m suite data prepare` writes one)")
    try:
        beton.import_ffcv()
    except DatasetError as e:
        return _fallback(split, f"auto: ffcv is installed but does not import ({e.__cause__})")
    beton.verify_beton(path, manifest, expected_count=len(split))  # a bad file raises
    return "ffcv", f"auto: ffcv importable and {note}", path
