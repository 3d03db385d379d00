"""loader_bench: images per second of three loaders on the same data and augmentation.

Measured in one run, on one split (the training split of ``spec.dataset``/``dataset_args``):

* ``ffcv``: :class:`tasks.ffcv_loader.FFCVLoader` over the split's ``.beton`` (the prepared
  one from the cache when it exists, else written to a temporary directory first, untimed);
* ``torch``: a ``torch.utils.data.DataLoader`` over a Dataset holding each item as an
  encoded PNG (or JPEG) and decoding it with PIL in ``__getitem__`` — how image datasets are
  usually served; ``workers`` processes, persistent, pinned memory on CUDA;
* ``tensor``: :class:`tasks.train_eval.TensorLoader`, the in-memory path.

Every batch gets the recipe's augmentation (``tasks.augment.augment_batch``: crop with
padding, flip, normalise) on the device, as in training. After one untimed warm-up pass
(JIT compile, worker start-up), ``passes`` full passes are timed. Then a small training
loop (``spec.model``, SGD) runs ``train_steps`` steps through each loader, and once on a
fixed batch (``model_only``: the model's own speed), which answers whether the loader is the
bottleneck: ``train_<kind>_vs_model`` near 1 means it is not.

Metrics (images/s and ratios): ``ffcv_ips``, ``torch_ips``, ``tensor_ips``,
``ffcv_vs_torch``, ``tensor_vs_torch``, ``ffcv_vs_tensor``, ``train_<kind>_ips``,
``train_model_only_ips``, ``train_<kind>_vs_model``, ``train_ffcv_vs_torch``.

``params`` (defaults in :data:`DEFAULTS`): ``batch_size``, ``passes``, ``workers`` (loader
threads and DataLoader processes; 0 = torch's thread count; FFCV also sets torch's CPU
threads to it), ``encode`` (``png`` | ``jpeg``), ``augment``,
``train_steps``, ``lr``.
"""

from __future__ import annotations

import copy
import io
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import registry
from registry.datasets import beton
from registry.datasets.base import DatasetError, Split
from suite.specs import RunSpec, TaskContext, TaskResult
from tasks.augment import AugmentSpec, augment_batch
from tasks.ffcv_loader import FFCVLoader
from tasks.train_eval import TensorLoader

DEFAULTS: dict[str, Any] = {
    "batch_size": 256, "passes": 2, "workers": 0, "encode": "png",
    "augment": {"crop_padding": 4, "flip": True}, "train_steps": 20, "lr": 0.05,
}
KINDS = ("torch", "ffcv", "tensor")  # torch first: its workers fork before FFCV threads run


class EncodedItems(torch.utils.data.Dataset):
    """Items stored encoded (PNG/JPEG bytes) and decoded with PIL per ``__getitem__``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, fmt: str = "png"):
        from PIL import Image

        if fmt not in ("png", "jpeg"):
            raise ValueError(f"params.encode must be 'png' or 'jpeg', got {fmt!r}")
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError("loader_bench encodes images [N, 1 or 3, H, W] only")
        self.y = y.tolist()
        self.blobs: list[bytes] = []
        for img in x.permute(0, 2, 3, 1).numpy():
            buf = io.BytesIO()
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(
                buf, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
            self.blobs.append(buf.getvalue())

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        a = np.asarray(Image.open(io.BytesIO(self.blobs[i])))
        t = torch.from_numpy(a.copy())
        return (t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()), self.y[i]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pass(loader, device, aug, g, mean, std) -> int:
    n = 0
    for xb, yb in loader:
        x = augment_batch(xb.to(device, non_blocking=True), aug, g, mean, std)
        yb.to(device, non_blocking=True)
        n += x.shape[0]
    _sync(device)
    return n


def _loader_ips(loader, passes: int, device, aug, mean, std) -> float:
    g = torch.Generator().manual_seed(0)
    _pass(loader, device, aug, g, mean, std)  # warm-up: JIT, worker start, page cache
    t0 = time.perf_counter()
    n = sum(_pass(loader, device, aug, g, mean, std) for _ in range(passes))
    return n / (time.perf_counter() - t0)


def _batches(loader):
    while True:
        yield from loader


def _train_ips(model, batches, steps: int, device, aug, mean, std, lr: float) -> float:
    model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    n, t0 = 0, 0.0
    for i in range(steps + 2):  # two untimed steps first
        if i == 2:
            _sync(device)
            t0 = time.perf_counter()
        xb, yb = next(batches)
        x = augment_batch(xb.to(device, non_blocking=True), aug, g, mean, std)
        loss = F.cross_entropy(model(x), yb.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            n += x.shape[0]
    _sync(device)
    return n / (time.perf_counter() - t0)


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    unknown = set(spec.params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"loader_bench: unknown params {sorted(unknown)}; known: "
                         f"{', '.join(sorted(DEFAULTS))}")
    p = {**DEFAULTS, **spec.params}
    if not beton.ffcv_installed():
        raise DatasetError(f"loader_bench measures FFCV, which is not installed here; "
                           f"{beton.ENABLE_HINT}")
    beton.import_ffcv()
    device = torch.device(ctx.device)
    torch.manual_seed(spec.seed)
    bundle = registry.create_dataset(spec.dataset, **spec.dataset_args)
    split = bundle.train
    if not split.in_memory:
        raise ValueError("loader_bench needs an in-memory dataset (it compares against the "
                         "tensor-resident path)")
    aug = AugmentSpec.from_params(p)
    bs, workers = int(p["batch_size"]), int(p["workers"]) or torch.get_num_threads()
    torch.set_num_threads(workers)  # FFCV does so at each epoch; the same for all three
    mean, std = bundle.mean, bundle.std
    n = len(split)

    with tempfile.TemporaryDirectory(prefix="loader_bench-") as tmp:
        path, _, note = beton.find_beton(split, bundle.provenance)
        if path is None:
            t0 = time.perf_counter()
            r = beton.prepare_split(registry.DATASETS.resolve(spec.dataset),
                                    dict(spec.dataset_args), "train", split, bundle.provenance,
                                    cache_dir=tmp, num_workers=workers)
            path, note = r["path"], f"written for this run in {time.perf_counter() - t0:.1f} s"
        ctx.provenance["loader_bench"] = {"beton": str(path), "beton_note": note,
                                          "workers": workers, "batch_size": bs, "items": n,
                                          "encode": p["encode"], "augment": vars(aug)}
        t0 = time.perf_counter()
        encoded = EncodedItems(split.x, split.y, p["encode"])
        ctx.provenance["loader_bench"]["encode_s"] = time.perf_counter() - t0
        loaders = {
            "ffcv": FFCVLoader(path, bs, True, spec.seed, True, device, num_threads=workers),
            "torch": torch.utils.data.DataLoader(
                encoded, batch_size=bs, shuffle=True, drop_last=True, num_workers=workers,
                persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                generator=torch.Generator().manual_seed(spec.seed)),
            "tensor": TensorLoader(Split(split.x, split.y), bs, True, spec.seed, True),
        }
        m: dict[str, float] = {}
        for kind in KINDS:
            m[f"{kind}_ips"] = _loader_ips(loaders[kind], int(p["passes"]), device, aug,
                                           mean, std)
            if ctx.report:
                ctx.report(KINDS.index(kind) + 1, len(KINDS) + 1, {f"{kind}_ips": m[f"{kind}_ips"]})

        margs = {"num_classes": bundle.num_classes, "in_chans": bundle.in_chans,
                 **spec.model_args}
        model = registry.create_model(spec.model, **margs).to(device)
        steps, lr = int(p["train_steps"]), float(p["lr"])
        fixed = next(iter(loaders["tensor"]))
        m["train_model_only_ips"] = _train_ips(model, iter(lambda: fixed, None), steps, device,
                                               aug, mean, std, lr)
        for kind in KINDS:
            ips = _train_ips(model, _batches(loaders[kind]), steps, device, aug, mean, std, lr)
            m[f"train_{kind}_ips"] = ips
            m[f"train_{kind}_vs_model"] = ips / m["train_model_only_ips"]
        del loaders  # stop DataLoader workers and FFCV threads before the files go
    m["ffcv_vs_torch"] = m["ffcv_ips"] / m["torch_ips"]
    m["tensor_vs_torch"] = m["tensor_ips"] / m["torch_ips"]
    m["ffcv_vs_tensor"] = m["ffcv_ips"] / m["tensor_ips"]
    m["train_ffcv_vs_torch"] = m["train_ffcv_ips"] / m["train_torch_ips"]
    m["items"] = float(n)
    if ctx.report:
        ctx.report(len(KINDS) + 1, len(KINDS) + 1, {"ffcv_vs_torch": m["ffcv_vs_torch"]})
    return TaskResult(metrics=m)
