"""train_eval: train a registry model on a registry dataset and evaluate it.

The one task behind every accuracy claim. A tier changes the numbers in ``params`` (epochs,
width, subset), never the code path. ``params`` (defaults in :data:`DEFAULTS`):

=================  =====================================================================
epochs             training epochs
batch_size         training batch size (eval uses ``eval_batch_size``)
optimizer          ``sgd`` (momentum, nesterov) or ``adamw``
lr, weight_decay   learning rate, L2 / decoupled weight decay
schedule           ``multistep`` (milestones in epochs, gamma), ``cosine``, ``onecycle``,
                   ``constant``; ``warmup_epochs`` of linear per-step warm-up before it
label_smoothing    cross-entropy label smoothing
augment            ``{crop_padding, flip, rotate_deg}`` batched on device (tasks/augment.py)
amp                ``auto`` (bf16 autocast on CUDA), ``true``, ``false``
channels_last      ``auto`` (on CUDA for 4-D input), ``true``, ``false``
compile            ``torch.compile`` the model (default false)
grad_clip          clip the global grad norm (default none)
select             ``last`` epoch (default) or ``min_train_loss`` (PoolSkip's rule: report
                   test accuracy at the epoch of lowest training loss)
loader             ``auto`` | ``tensor`` | ``torch`` (| ``ffcv`` when installed)
init               ``default`` (the model's own), ``kaiming_normal`` (He et al. 2015,
                   fan-in, ReLU gain; biases 0) or ``xavier`` (Glorot uniform) for every
                   conv/linear weight — deep nets without BN (All-CNN) need one of these
val_split          hold out part of the *training* set for validation: a fraction in
                   (0, 1) or a count of items; class-balanced and fixed by ``val_seed``
                   (default 0), so every seed and every tuning trial sees the same split.
                   The model trains on the rest. 0 (default) = no validation split.
objective          ``val_top1``, ``val_top1_err`` or ``val_loss``: the metric a tuner
                   optimises, reported as ``objective`` (final and per epoch). It can only
                   name a validation metric (needs ``val_split``): the test set never
                   tunes anything.
analyze            analyses of the trained model added to the run, e.g. ``["singularity"]``
                   (per-layer l2/l1, near-zero weights, dead units: tasks/singularity.py)
test_every         ``epoch`` (default: the test set is scored after every epoch, the
                   per-epoch series) or ``last`` (scored once, after the last epoch: a large
                   test set, which narrows a paired comparison's interval, then costs one
                   pass instead of one per epoch; needs ``select = "last"``; the test
                   series are NaN, i.e. no point, at the other epochs)
=================  =====================================================================

Metrics: ``top1``/``top5`` accuracy and ``top1_err``/``top5_err`` in %, ``test_loss``,
``train_loss``, ``wall_s``, ``images_per_s`` (training only), ``params_m``,
``gflops_per_image`` (one forward, :func:`registry.models.info.count_flops`). Per-epoch series:
``train_loss``, ``test_top1``, ``test_loss``, ``lr``. With ``val_split``: metrics
``val_top1``, ``val_top1_err``, ``val_loss`` (at the selected epoch, like ``top1``) and
``best_val_top1``; series ``val_top1``, ``val_loss``; with ``objective`` also metric and
series ``objective``. The per-epoch ``PROGRESS`` lines carry the validation metrics and the
objective, which is what a tuner's pruner sees (``suite/sweep.py``). With ``analyze``: the
analysis's metrics, per-layer series and artifacts (tasks/singularity.py).

A non-finite or exploding loss stops the run with :class:`tasks.TaskFailed`, recorded as an
``error`` row naming the epoch, step and learning rate. Each epoch is checkpointed (atomic
write) to ``ctx.checkpoint_path``, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import registry
from registry.datasets.base import holdout
from registry.models.info import count_flops
from suite.specs import RunSpec, TaskContext, TaskResult, short_hash
from tasks import TASKS, TaskFailed, check_params
from tasks.augment import AugmentSpec, augment_batch, normalize

DEFAULTS: dict[str, Any] = {
    "epochs": 10, "batch_size": 128, "eval_batch_size": 512, "optimizer": "sgd", "lr": 0.1,
    "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4, "schedule": "multistep",
    "milestones": [], "gamma": 0.1, "warmup_epochs": 0, "label_smoothing": 0.0,
    "augment": {}, "amp": "auto", "channels_last": "auto", "compile": False,
    "grad_clip": None, "select": "last", "loader": "auto", "max_loss": 1e4,
    "num_workers": 0, "init": "default", "val_split": 0, "val_seed": 0, "objective": None,
    "analyze": [], "test_every": "epoch",
}
#: What ``params.objective`` may name: validation metrics only, never a test-set metric.
OBJECTIVES: tuple[str, ...] = tuple(TASKS.entry("train_eval").meta["objectives"])
ANALYSES = ("singularity",)  # params.analyze values


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    p = check_params("train_eval", params, DEFAULTS)
    choices = {"select": ("last", "min_train_loss"), "optimizer": ("sgd", "adamw"),
               "schedule": ("multistep", "cosine", "onecycle", "constant"),
               "amp": ("auto", True, False), "channels_last": ("auto", True, False),
               "init": ("default", "kaiming_normal", "xavier"),
               "test_every": ("epoch", "last")}
    for key, allowed in choices.items():  # checked up front: a typo must not waste a run
        if p[key] not in allowed or (isinstance(p[key], str) and key in ("amp", "channels_last")
                                     and p[key] != "auto"):
            raise ValueError(f"params.{key} = {p[key]!r} is not one of "
                             f"{', '.join(repr(a) for a in allowed)}")
    if not isinstance(p["analyze"], list) or any(a not in ANALYSES for a in p["analyze"]):
        raise ValueError(f"params.analyze = {p['analyze']!r} must be a list of "
                         f"{', '.join(repr(a) for a in ANALYSES)}")
    if p["test_every"] == "last" and p["select"] != "last":
        raise ValueError(f"params.test_every = 'last' scores the test set only after the last "
                         f"epoch, so params.select must be 'last', not {p['select']!r}")
    if not isinstance(p["epochs"], int) or p["epochs"] < 1:
        raise ValueError(f"params.epochs must be an integer ≥ 1, got {p['epochs']!r}")
    vs = p["val_split"]
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or vs < 0 or (
            isinstance(vs, float) and vs >= 1):
        raise ValueError(f"params.val_split must be a fraction in (0, 1), a count of training "
                         f"items, or 0 for none; got {vs!r}")
    if p["objective"] is not None:
        if p["objective"] not in OBJECTIVES:
            raise ValueError(f"params.objective = {p['objective']!r} is not one of "
                             f"{', '.join(OBJECTIVES)}: a tuning objective is always measured "
                             f"on the held-out validation split, never on the test set")
        if not vs:
            raise ValueError("params.objective needs params.val_split (e.g. 0.1): the tuning "
                             "metric comes from a split held out of the training set")
    return p


def val_count(val_split: int | float, n_train: int) -> int:
    """Items to hold out: ``val_split`` as a fraction of ``n_train`` or as a count."""
    n = round(val_split * n_train) if isinstance(val_split, float) else int(val_split)
    if not 0 < n < n_train:
        raise ValueError(f"params.val_split = {val_split!r} holds out {n} of {n_train} training "
                         f"items; it must leave at least one on each side")
    return n


# -- data --------------------------------------------------------------------------------
class TensorLoader:
    """Batches of an in-memory uint8 split, reshuffled each epoch by a seeded generator."""

    def __init__(self, split, batch_size: int, shuffle: bool, seed: int, drop_last: bool):
        self.x, self.y = split.x, split.y
        self.bs, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.g = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.bs if self.drop_last and n >= self.bs else math.ceil(n / self.bs)

    def __iter__(self):
        n = len(self.y)
        order = torch.randperm(n, generator=self.g) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.bs:(i + 1) * self.bs]
            yield self.x[idx], self.y[idx]


def make_loader(split, batch_size: int, shuffle: bool, seed: int, p: dict[str, Any],
                ctx: TaskContext, drop_last: bool = False):
    """The loader ``params.loader`` asks for (see :func:`tasks.ffcv_loader.choose_loader`).

    The choice and its reason go to ``ctx.provenance["loader"]`` / ``["loader_reason"]``
    (the first call, the training split's); ``["loaders"]`` names the kind per split.
    """
    from tasks.ffcv_loader import FFCVLoader, choose_loader

    kind, reason, beton_path = choose_loader(p["loader"], split, ctx.provenance.get("dataset"))
    ctx.provenance.setdefault("loader", kind)
    ctx.provenance.setdefault("loader_reason", reason)
    ctx.provenance.setdefault("loaders", {})["train" if shuffle else "eval"] = kind
    if kind == "ffcv":
        ctx.provenance.setdefault("loader_beton", {})["train" if shuffle else "eval"] = (
            beton_path.name)
        # decoding threads = torch's CPU threads (FFCV sets torch's count to its own)
        return FFCVLoader(beton_path, batch_size, shuffle, seed, drop_last, ctx.device)
    if kind == "tensor":
        return TensorLoader(split, batch_size, shuffle, seed, drop_last)
    ds = split.dataset
    if ds is None:  # in-memory split forced through DataLoader
        ds = torch.utils.data.TensorDataset(split.x, split.y)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g,
                                       num_workers=int(p["num_workers"]), drop_last=drop_last)


# -- optimisation -------------------------------------------------------------------------
def make_optimizer(model: nn.Module, p: dict[str, Any]) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for _, prm in model.named_parameters():
        if prm.requires_grad:
            (no_decay if prm.ndim <= 1 else decay).append(prm)
    groups = [{"params": decay, "weight_decay": p["weight_decay"]},
              {"params": no_decay, "weight_decay": p["weight_decay"]}]
    if p["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=p["lr"], momentum=p["momentum"],
                               nesterov=bool(p["nesterov"]))
    if p["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=p["lr"])
    raise ValueError(f"params.optimizer must be 'sgd' or 'adamw', got {p['optimizer']!r}")


def lr_factor(step: int, steps_per_epoch: int, p: dict[str, Any]) -> float:
    """Multiplier of the base lr at a global step: warm-up, then the schedule (per step)."""
    total = p["epochs"] * steps_per_epoch
    warm = int(p["warmup_epochs"] * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    epoch = step / steps_per_epoch
    kind = p["schedule"]
    if kind == "constant":
        return 1.0
    if kind == "multistep":
        return p["gamma"] ** sum(epoch >= m for m in p["milestones"])
    t = (step - warm) / max(1, total - warm)
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    if kind == "onecycle":  # linear up for 30%, cosine down to 0
        return t / 0.3 if t < 0.3 else 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7))
    raise ValueError(f"params.schedule must be multistep/cosine/onecycle/constant, got {kind!r}")


def reinit(model: nn.Module, scheme: str) -> None:
    """Re-initialise every conv/linear weight (biases to 0) by ``scheme``."""
    if scheme == "default":
        return
    if scheme not in ("kaiming_normal", "xavier"):
        raise ValueError(f"params.init must be default, kaiming_normal or xavier, got {scheme!r}")
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            if scheme == "kaiming_normal":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# -- evaluation ---------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, loader, bundle, device: torch.device, amp_dtype, fmt
             ) -> dict[str, float]:
    model.eval()
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    for xb, yb in loader:
        x = normalize(xb.to(device, non_blocking=True), bundle.mean, bundle.std)
        x = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
        y = yb.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        out = out.float()
        loss_sum += F.cross_entropy(out, y, reduction="sum").item()
        k = min(5, out.shape[1])
        top = out.topk(k, dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(dim=1).sum().item()
        n += len(y)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "test_loss": loss_sum / n}


# -- checkpoint -------------------------------------------------------------------------
def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill leaves the previous checkpoint intact


def load_checkpoint(path: str | None, run_key: str) -> dict[str, Any] | None:
    if not path or not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a corrupt checkpoint is discarded, the run restarts
        return None
    return state if state.get("run_key") == run_key else None


# -- the task ---------------------------------------------------------------------------
def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    return fit(spec, ctx)[0]


def fit(spec: RunSpec, ctx: TaskContext, params: dict[str, Any] | None = None
        ) -> tuple[TaskResult, nn.Module, Any]:
    """Train and evaluate; return ``(result, trained model, dataset bundle)`` so that a task
    measuring something else about the trained model (``tasks/saliency.py``) reuses this
    loop. ``params`` replaces ``spec.params`` (a caller's own keys removed)."""
    p = resolve_params(spec.params if params is None else params)
    device = torch.device(ctx.device)
    torch.manual_seed(spec.seed)

    bundle = registry.create_dataset(spec.dataset, **spec.dataset_args)
    margs = {"num_classes": bundle.num_classes, "in_chans": bundle.in_chans, **spec.model_args}
    model = registry.create_model(spec.model, **margs)
    reinit(model, p["init"])
    model = model.to(device)
    params_m = sum(t.numel() for t in model.parameters()) / 1e6

    on_cuda = device.type == "cuda"
    amp_dtype = torch.bfloat16 if (p["amp"] is True or (p["amp"] == "auto" and on_cuda)) else None
    four_d = len(bundle.input_size) == 2
    use_cl = p["channels_last"] is True or (p["channels_last"] == "auto" and on_cuda and four_d)
    fmt = torch.channels_last if use_cl else torch.contiguous_format
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    ctx.provenance.update({"amp": str(amp_dtype) if amp_dtype else "off",
                           "channels_last": use_cl, "compile": bool(p["compile"]),
                           "dataset": bundle.provenance})
    fwd = torch.compile(model) if p["compile"] else model

    train_split, val_loader = bundle.train, None
    if p["val_split"]:  # carved from the training set; the test split is never touched
        n_val = val_count(p["val_split"], len(bundle.train))
        train_split, val_data, held = holdout(bundle.train, n_val, int(p["val_seed"]),
                                               bundle.num_classes)
        ctx.provenance["validation"] = {
            "from": "train", "n": n_val, "train_n": len(train_split), "seed": p["val_seed"],
            "indices_sha": short_hash(held)}

    aug = AugmentSpec.from_params(p)
    train_loader = make_loader(train_split, p["batch_size"], True, spec.seed, p, ctx,
                               drop_last=len(train_split) >= 2 * p["batch_size"])
    test_loader = make_loader(bundle.test, p["eval_batch_size"], False, 0, p, ctx)
    if p["val_split"]:
        val_loader = make_loader(val_data, p["eval_batch_size"], False, 0, p, ctx)
    steps = len(train_loader)
    opt = make_optimizer(model, p)
    g_aug = torch.Generator(device="cpu").manual_seed(spec.seed + 7919)
    crit = nn.CrossEntropyLoss(label_smoothing=float(p["label_smoothing"]))

    history: dict[str, list[float]] = {"train_loss": [], "test_top1": [], "test_loss": [],
                                       "lr": []}
    start_epoch, train_time, n_seen = 0, 0.0, 0
    state = load_checkpoint(ctx.checkpoint_path, spec.run_key)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"]
        train_time, n_seen = state["train_time"], state["n_seen"]
        g_aug.set_state(state["g_aug"])
        train_loader_g = getattr(train_loader, "g", None)
        if train_loader_g is not None:
            train_loader_g.set_state(state["g_loader"])
        torch.set_rng_state(state["torch_rng"])
        ctx.provenance["resumed_from_epoch"] = start_epoch

    for epoch in range(start_epoch, p["epochs"]):
        model.train()
        t0 = time.perf_counter()
        loss_sum, count = 0.0, 0
        for i, (xb, yb) in enumerate(train_loader):
            step = epoch * steps + i
            lr = p["lr"] * lr_factor(step, steps, p)
            for group in opt.param_groups:
                group["lr"] = lr
            x = augment_batch(xb.to(device, non_blocking=True), aug, g_aug, bundle.mean,
                              bundle.std)
            x = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
            y = yb.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = crit(fwd(x).float(), y)
            lv = loss.item()
            if not math.isfinite(lv) or lv > p["max_loss"]:
                raise TaskFailed(
                    f"training diverged: loss = {lv:.4g} at epoch {epoch + 1}, step {i + 1} "
                    f"(lr = {lr:.4g}). Lower params.lr, add params.warmup_epochs or set "
                    f"params.grad_clip."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if p["grad_clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), float(p["grad_clip"]))
            opt.step()
            loss_sum += lv * len(y)
            count += len(y)
        train_time += time.perf_counter() - t0
        n_seen += count
        history["train_loss"].append(loss_sum / max(1, count))
        history["lr"].append(lr)
        progress = {"train_loss": history["train_loss"][-1]}
        if p["test_every"] == "epoch" or epoch == p["epochs"] - 1:
            last_eval = evaluate(fwd, test_loader, bundle, device, amp_dtype, fmt)
            progress["top1"] = last_eval["top1"]
        else:  # not scored this epoch: a gap in the curves (the DB stores no point there)
            last_eval = {"top1": math.nan, "test_loss": math.nan, "top5": math.nan}
        history["test_top1"].append(last_eval["top1"])
        history["test_loss"].append(last_eval["test_loss"])
        history.setdefault("test_top5", []).append(last_eval["top5"])
        if val_loader is not None:
            v = evaluate(fwd, val_loader, bundle, device, amp_dtype, fmt)
            history.setdefault("val_top1", []).append(v["top1"])
            history.setdefault("val_loss", []).append(v["test_loss"])
            progress.update(val_top1=v["top1"], val_loss=v["test_loss"])
            if p["objective"]:
                value = _val_metrics(history, len(history["val_top1"]) - 1)[p["objective"]]
                history.setdefault("objective", []).append(value)
                progress["objective"] = value
        if ctx.report:
            ctx.report(epoch + 1, p["epochs"], progress)
        if ctx.checkpoint_path:
            save_checkpoint(ctx.checkpoint_path, {
                "run_key": spec.run_key, "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "history": history, "train_time": train_time,
                "n_seen": n_seen, "g_aug": g_aug.get_state(),
                "g_loader": getattr(train_loader, "g", torch.Generator()).get_state(),
                "torch_rng": torch.get_rng_state(),
            })

    if not history["train_loss"]:
        raise TaskFailed("params.epochs must be ≥ 1")
    pick = len(history["train_loss"]) - 1
    if p["select"] == "min_train_loss":
        pick = min(range(len(history["train_loss"])), key=history["train_loss"].__getitem__)
    elif p["select"] != "last":
        raise ValueError(f"params.select must be 'last' or 'min_train_loss', got {p['select']!r}")
    top1, top5 = history["test_top1"][pick], history["test_top5"][pick]
    metrics = {
        "top1": top1, "top1_err": 100.0 - top1, "top5": top5, "top5_err": 100.0 - top5,
        "test_loss": history["test_loss"][pick], "train_loss": history["train_loss"][pick],
        "best_top1": max(v for v in history["test_top1"] if not math.isnan(v)),
        "epochs": float(len(history["train_loss"])),
        "wall_s": train_time, "images_per_s": n_seen / train_time if train_time else 0.0,
        "params_m": params_m,
    }
    if "val_top1" in history:
        metrics.update(_val_metrics(history, pick), best_val_top1=max(history["val_top1"]))
        if p["objective"]:
            metrics["objective"] = history["objective"][pick]
    flops = count_flops(model, (bundle.in_chans, *bundle.input_size), device)
    metrics["gflops_per_image"] = flops / 1e9 if flops is not None else math.nan
    ctx.provenance["selected_epoch"] = pick + 1
    ctx.provenance["pool_paths"] = _pool_paths(model)
    result = TaskResult(metrics=metrics, series=history)
    if "singularity" in p["analyze"]:  # on the final weights (whatever params.select says)
        from tasks import singularity

        batch = singularity.held_out_batch(bundle).to(device, memory_format=fmt)
        m, s, a = singularity.result_parts(singularity.analyze(model, batch), spec.model,
                                           title=f"{spec.model} {spec.model_args or ''}")
        result.metrics.update(m)
        result.series.update(s)
        result.artifacts.update(a)
    return result, model, bundle


def _val_metrics(history: dict[str, list[float]], i: int) -> dict[str, float]:
    """The validation metrics of epoch ``i`` (what ``params.objective`` can name)."""
    top1 = history["val_top1"][i]
    return {"val_top1": top1, "val_top1_err": 100.0 - top1, "val_loss": history["val_loss"][i]}


def _pool_paths(model: nn.Module) -> dict[str, str]:
    """Which kernel path each pooling module type used (SoftPool modules expose ``path``:
    ``triton``, ``fused_cpu`` or ``reference``, see ``registry.pools.softpool``)."""
    out: dict[str, str] = {}
    for m in model.modules():
        path = getattr(m, "path", None)
        if isinstance(path, str):
            out[type(m).__name__] = path
    return out
