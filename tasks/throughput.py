"""Task ``throughput``: images/s of a model's training step on the device at hand.

A short probe, not a benchmark: it builds ``spec.model`` (with ``spec.model_args``), feeds it
synthetic batches of the model's registered input size (or ``params.input_size``), and times
``params.steps`` full training steps (forward, cross-entropy, backward, SGD with momentum)
after ``params.warmup`` untimed ones. On CUDA it synchronises around the timed loop and uses
bf16 autocast and channels-last like ``train_eval`` does (``params.amp`` /
``params.channels_last``: ``auto``, true, false). Data loading and augmentation are not
included, so the number is an upper bound on ``train_eval``'s ``images_per_s``.

It serves ``python -m suite report --cost``: a full-tier claim's device-hours are estimated
as epochs × training images × arms × seeds ÷ the probe's images/s on this device.

Metrics: ``images_per_s``, ``step_ms`` (median step), ``gflops_per_image`` (one forward),
``params_m``. Params (defaults in :data:`DEFAULTS`): ``batch_size``, ``steps``, ``warmup``,
``input_size`` ([C, H, W]), ``num_classes``, ``amp``, ``channels_last``.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

import registry
from registry.models.info import count_flops, count_params, default_input_size
from suite.specs import RunSpec, TaskContext, TaskResult
from tasks import check_params

DEFAULTS: dict[str, Any] = {"batch_size": 128, "steps": 5, "warmup": 2, "input_size": None,
                            "num_classes": None, "amp": "auto", "channels_last": "auto"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe(model_name: str, model_args: dict[str, Any], device: str = "cpu",
          **params: Any) -> dict[str, float]:
    """Time ``params['steps']`` training steps of ``model_name``; see the module docstring."""
    p = check_params("throughput", params, DEFAULTS)
    if int(p["steps"]) < 1 or int(p["batch_size"]) < 1:
        raise ValueError("throughput: params.steps and params.batch_size must be ≥ 1")
    dev = torch.device(device)
    margs = dict(model_args)
    size = tuple(p["input_size"]) if p["input_size"] else default_input_size(
        model_name, margs.get("in_chans"))
    margs.setdefault("in_chans", size[0])
    if p["num_classes"]:
        margs["num_classes"] = int(p["num_classes"])
    model = registry.create_model(model_name, **margs).to(dev).eval()
    with torch.no_grad():  # the head's width: the labels to draw
        classes = model(torch.zeros((1, *size), device=dev)).shape[1]
    on_cuda = dev.type == "cuda"
    amp = p["amp"] is True or (p["amp"] == "auto" and on_cuda)
    cl = (p["channels_last"] is True or (p["channels_last"] == "auto" and on_cuda)) and \
        len(size) == 3
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator(device="cpu").manual_seed(0)
    bs = int(p["batch_size"])
    x = torch.randn((bs, *size), generator=g).to(dev).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (bs,), generator=g).to(dev)
    model.train()
    times = []
    for i in range(int(p["warmup"]) + int(p["steps"])):
        _sync(dev)
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(dev)
        if i >= int(p["warmup"]):
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    flops = count_flops(model, size, dev)
    return {"images_per_s": bs / step, "step_ms": 1e3 * step,
            "gflops_per_image": flops / 1e9 if flops is not None else math.nan,
            "params_m": count_params(model) / 1e6}


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    torch.manual_seed(spec.seed)
    metrics = probe(spec.model, spec.model_args, ctx.device, **spec.params)
    ctx.provenance["throughput"] = {"what": "training step (fwd+bwd+SGD), synthetic input",
                                    "threads": torch.get_num_threads()}
    return TaskResult(metrics=metrics)
