"""Process-global state a run may change, put back before the next run in the same process.

A warm worker (:mod:`suite.pool`) runs many RunSpecs in one long-lived process, so a run's
result must not depend on what ran before it there. :func:`reset` (called by
:func:`suite.worker.execute` before every run) restores the torch state a task can change
for the rest of the process to the state the process had before its first run
(:func:`capture`), then seeds Python, NumPy and torch from the spec's seed:

* torch switches: default dtype and device, grad mode, deterministic algorithms (and their
  warn-only mode and memory filling), anomaly detection, cuDNN / cuBLAS / oneDNN flags and
  the float32 precision settings (new ``fp32_precision`` API; the legacy
  ``set_float32_matmul_precision`` writes the same attributes), autocast state and cache,
  flush-denormal, intra-op threads;
* CUDA: cached blocks freed and peak-memory statistics reset (memory metrics are per run).

:func:`restore_process` puts back ``os.environ`` and the working directory; the processes
that own their whole life (the warm worker loop, a Ray task) call it after each run, while
an in-process caller (a test, a notebook) keeps its own environment.

Warning filters are scoped per run by the caller (``warnings.catch_warnings``). Inter-op
threads cannot be changed once set, so they are not touched. In-process data caches (e.g. the
decoded Fashion-MNIST arrays) stay: they are read-only inputs, and
``tests/test_pool.py`` checks that a spec gives identical metrics cold and after other specs.
"""

from __future__ import annotations

import gc
import os
import random
import sys
from typing import Any

# (dotted object path under torch, attribute): switches restored by plain assignment
_ATTRS: tuple[tuple[str, str], ...] = (
    ("backends.cudnn", "benchmark"), ("backends.cudnn", "deterministic"),
    ("backends.cudnn", "enabled"), ("backends.cudnn", "allow_tf32"),
    ("backends.cuda.matmul", "allow_tf32"),
    ("backends.cuda.matmul", "allow_fp16_reduced_precision_reduction"),
    ("backends.cuda.matmul", "allow_bf16_reduced_precision_reduction"),
    ("backends.mkldnn", "enabled"),
    ("backends", "fp32_precision"), ("backends.cuda.matmul", "fp32_precision"),
    ("backends.cudnn", "fp32_precision"), ("backends.cudnn.conv", "fp32_precision"),
    ("backends.cudnn.rnn", "fp32_precision"), ("backends.mkldnn", "fp32_precision"),
    ("backends.mkldnn.conv", "fp32_precision"), ("backends.mkldnn.rnn", "fp32_precision"),
    ("backends.mkldnn.matmul", "fp32_precision"),
    ("utils.deterministic", "fill_uninitialized_memory"),
)
_AUTOCAST_DEVICES = ("cpu", "cuda")

_baseline: dict[str, Any] | None = None


def _resolve(torch: Any, path: str) -> Any:
    obj = torch
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _snapshot() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {
        "dtype": torch.get_default_dtype(),
        "device": torch.get_default_device(),
        "grad": torch.is_grad_enabled(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()),
        "anomaly": (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
        "threads": torch.get_num_threads(),
        "autocast": {d: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d))
                     for d in _AUTOCAST_DEVICES},
        "autocast_cache": torch.is_autocast_cache_enabled(),
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "attrs": {},
    }
    for path, attr in _ATTRS:
        obj = _resolve(torch, path)
        if obj is not None and hasattr(obj, attr):
            state["attrs"][(path, attr)] = getattr(obj, attr)
    return state


def capture() -> None:
    """Remember this process's state as the one every run starts from (first call wins)."""
    global _baseline
    if _baseline is None:
        _baseline = _snapshot()


def reset(seed: int, threads: int | None = None) -> None:
    """Restore the captured state, set ``threads`` (else the captured count), seed all RNGs."""
    import torch

    capture()
    b = _baseline
    assert b is not None
    # each setter only when the value differs: some are costly even as no-ops
    # (use_deterministic_algorithms imports torch._inductor, ~8 s on first call)
    if torch.get_default_dtype() != b["dtype"]:
        torch.set_default_dtype(b["dtype"])
    if torch.get_default_device() != b["device"]:
        torch.set_default_device(b["device"])
    torch.set_grad_enabled(b["grad"])
    if (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled()) != b["deterministic"]:
        torch.use_deterministic_algorithms(b["deterministic"][0],
                                           warn_only=b["deterministic"][1])
    if (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()) != b["anomaly"]:
        torch.set_anomaly_enabled(*b["anomaly"])
    for (path, attr), value in b["attrs"].items():
        obj = _resolve(torch, path)
        if obj is not None and getattr(obj, attr, value) != value:
            setattr(obj, attr, value)
    for d, (enabled, dtype) in b["autocast"].items():
        if torch.is_autocast_enabled(d) != enabled:
            torch.set_autocast_enabled(d, enabled)
        if torch.get_autocast_dtype(d) != dtype:
            torch.set_autocast_dtype(d, dtype)
    if torch.is_autocast_cache_enabled() != b["autocast_cache"]:
        torch.set_autocast_cache_enabled(b["autocast_cache"])
    torch.clear_autocast_cache()
    torch.set_flush_denormal(False)
    want = int(threads) if threads else b["threads"]
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
    if "torch._dynamo" in sys.modules:  # compiled graphs of the previous run
        sys.modules["torch._dynamo"].reset()
    gc.collect()  # cheap in a warm worker, which gc.freeze()s its imports first
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)
    seed_everything(seed)


def restore_process() -> None:
    """Put back ``os.environ`` and the working directory captured by :func:`capture`."""
    capture()
    b = _baseline
    assert b is not None
    if os.getcwd() != b["cwd"]:
        os.chdir(b["cwd"])
    if os.environ != b["environ"]:
        os.environ.clear()
        os.environ.update(b["environ"])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
