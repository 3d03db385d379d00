"""loader_bench: images per second of three loaders on the same data and augmentation.

Measured in one run, on one split (the training split of ``spec.dataset``/``dataset_args``):

* ``ffcv``: :class:`tasks.ffcv_loader.FFCVLoader` over the split's ``.beton`` (the prepared
  one from the cache when it exists, else written to a temporary directory first, untimed);
* ``torch``: a ``torch.utils.data.DataLoader`` over a Dataset holding each item as an
  encoded PNG (or JPEG) and decoding it with PIL in ``__getitem__`` — how image datasets are
  usually served; ``workers`` processes, persistent, pinned memory on CUDA;
* ``tensor``: :class:`tasks.train_eval.TensorLoader`, the in-memory path.

Every batch gets the recipe's augmentation (``tasks.augment.augment_batch``: crop with
padding, flip, normalise) on the device, as in training. After ``warmup`` untimed passes of
each loader (JIT compile, worker start-up, page cache), ``passes`` full passes of each are
timed **interleaved** (torch, ffcv, tensor, then the next round with the order rotated), so
load from other processes hits every loader alike; images/s is the median over the passes
and each ratio the median of the per-round ratios. Then a small training loop
(``spec.model``, SGD) runs ``train_steps`` steps per round through each loader and on a fixed
batch (``model_only``: the model's own speed), ``train_repeats`` interleaved rounds, which
answers whether the loader is the bottleneck: ``train_<kind>_vs_model`` near 1 means it is
not.

Metrics (images/s and ratios): ``ffcv_ips``, ``torch_ips``, ``tensor_ips``,
``ffcv_vs_torch``, ``tensor_vs_torch``, ``ffcv_vs_tensor``, ``train_<kind>_ips``,
``train_model_only_ips``, ``train_<kind>_vs_model``, ``train_ffcv_vs_torch``; ``repeats``
(timed passes per loader) and ``train_repeats``, so a verdict can state its repetitions.

``params`` (defaults in :data:`DEFAULTS`): ``batch_size``, ``passes``, ``warmup``,
``workers`` (loader threads and DataLoader processes; 0 = torch's thread count; FFCV also
sets torch's CPU threads to it), ``encode`` (``png`` | ``jpeg``), ``augment``,
``train_steps``, ``train_repeats``, ``lr``.
"""

from __future__ import annotations

import copy
import io
import statistics
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
    "batch_size": 256, "passes": 7, "warmup": 1, "workers": 0, "encode": "png",
    "augment": {"crop_padding": 4, "flip": True}, "train_steps": 10, "train_repeats": 5,
    "lr": 0.05,
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


def interleaved(jobs: dict[str, Any], rounds: int, warmup: int = 0) -> dict[str, list[float]]:
    """Call every job once per round, in an order rotated each round (A, B, C; B, C, A; ...),
    after ``warmup`` untimed rounds; returns each job's per-round rate (its return value, a
    count, over its wall time)."""
    names = list(jobs)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        turn = r % len(names)
        for name in names[turn:] + names[:turn]:
            t0 = time.perf_counter()
            n = jobs[name]()
            if r >= warmup:
                rates[name].append(n / (time.perf_counter() - t0))
    return rates


def paired_median(a: list[float], b: list[float]) -> float:
    """The median of the per-round ratios a_r / b_r."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _batches(loader):
    while True:
        yield from loader


class _Trainer:
    """A copy of the model with its own optimizer, fed by one loader; each call trains
    ``steps`` steps and returns the images seen (synchronised, so the wall time is real)."""

    def __init__(self, model, batches, steps: int, device, aug, mean, std, lr: float):
        self.model = copy.deepcopy(model).train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        self.g = torch.Generator().manual_seed(1)
        self.batches, self.steps, self.device = batches, steps, device
        self.aug, self.mean, self.std = aug, mean, std

    def __call__(self) -> int:
        n = 0
        for _ in range(self.steps):
            xb, yb = next(self.batches)
            x = augment_batch(xb.to(self.device, non_blocking=True), self.aug, self.g,
                              self.mean, self.std)
            loss = F.cross_entropy(self.model(x), yb.to(self.device, non_blocking=True))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            n += x.shape[0]
        _sync(self.device)
        return n


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
        passes, warmup = int(p["passes"]), int(p["warmup"])
        if passes < 1 or warmup < 0 or int(p["train_repeats"]) < 1:
            raise ValueError("loader_bench: params.passes and params.train_repeats must be at "
                             "least 1, params.warmup at least 0")
        g = torch.Generator().manual_seed(0)
        rates = interleaved({k: (lambda ld=loaders[k]: _pass(ld, device, aug, g, mean, std))
                             for k in KINDS}, passes, warmup)
        m: dict[str, float] = {f"{k}_ips": statistics.median(rates[k]) for k in KINDS}
        m["ffcv_vs_torch"] = paired_median(rates["ffcv"], rates["torch"])
        m["tensor_vs_torch"] = paired_median(rates["tensor"], rates["torch"])
        m["ffcv_vs_tensor"] = paired_median(rates["ffcv"], rates["tensor"])
        if ctx.report:
            ctx.report(1, 2, {"ffcv_vs_torch": m["ffcv_vs_torch"]})

        margs = {"num_classes": bundle.num_classes, "in_chans": bundle.in_chans,
                 **spec.model_args}
        model = registry.create_model(spec.model, **margs).to(device)
        steps, lr = int(p["train_steps"]), float(p["lr"])
        fixed = next(iter(loaders["tensor"]))
        feeds = {"model_only": iter(lambda: fixed, None),
                 **{k: _batches(loaders[k]) for k in KINDS}}
        trainers = {k: _Trainer(model, b, steps, device, aug, mean, std, lr)
                    for k, b in feeds.items()}
        train = interleaved(trainers, int(p["train_repeats"]), warmup=1)
        for kind, r in train.items():
            m[f"train_{kind}_ips"] = statistics.median(r)
        for kind in KINDS:
            m[f"train_{kind}_vs_model"] = paired_median(train[kind], train["model_only"])
        m["train_ffcv_vs_torch"] = paired_median(train["ffcv"], train["torch"])
        del loaders, feeds, trainers  # stop DataLoader workers and FFCV threads first
    m["items"] = float(n)
    m["repeats"] = float(passes)
    m["train_repeats"] = float(p["train_repeats"])
    ctx.provenance["loader_bench"]["timing"] = (
        f"median over {passes} interleaved passes per loader after {warmup} warm-up; "
        f"training: median over {p['train_repeats']} interleaved rounds of {steps} steps")
    if ctx.report:
        ctx.report(2, 2, {"train_ffcv_vs_torch": m["train_ffcv_vs_torch"]})
    return TaskResult(metrics=m)
