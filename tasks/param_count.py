"""Task ``param_count``: parameter count (and FLOPs) of a model — deterministic, no data.

The model is built from ``spec.model`` with ``spec.model_args`` only (``num_classes`` and
``in_chans`` come from there, else the factory's defaults; the dataset is not loaded, since a
paper's count is a property of the architecture). FLOPs are counted at batch 1 and the model's
registered default input size, or ``spec.params["input_size"]`` when given (see
:mod:`registry.models.info`).

Metrics: ``params`` (count), ``params_m`` (millions), ``flops`` and ``gflops`` (NaN when the
forward could not be traced).
"""

from __future__ import annotations

import math

from registry.models.info import model_info
from suite.specs import RunSpec, TaskContext, TaskResult


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    size = spec.params.get("input_size")
    info = model_info(spec.model, input_size=tuple(size) if size else None, **spec.model_args)
    flops = info["flops"]
    ctx.provenance["param_count"] = {
        "input_size": list(info["input_size"]), "flop_counter": "torch.utils.flop_counter",
        "model_args": dict(spec.model_args),
    }
    return TaskResult(metrics={
        "params": float(info["params"]),
        "params_m": info["params"] / 1e6,
        "flops": float(flops) if flops is not None else math.nan,
        "gflops": flops / 1e9 if flops is not None else math.nan,
    })
