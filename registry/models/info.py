"""Parameter count and FLOPs of a registered model (what ``python -m suite ls models`` shows).

``model_info(name, **kwargs)`` builds the model (on the ``meta`` device when possible, so no
memory is allocated and no weights are initialised; on the CPU otherwise), counts its
parameters, and counts FLOPs with :class:`torch.utils.flop_counter.FlopCounterMode` for one
forward pass at batch 1 and the entry's default ``input_size`` meta (or ``input_size=``).
FLOPs follow PyTorch's convention (a multiply-add counts 2; convolutions, matmuls and
attention only — pooling and elementwise ops count 0); a model whose forward cannot be traced
gets ``flops=None``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

import registry

DEFAULT_INPUT = (3, 32, 32)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def count_flops(model: nn.Module, input_size: tuple[int, ...], device: str | torch.device = "cpu"
                ) -> int | None:
    """FLOPs of one forward at batch 1, or ``None`` when the forward fails."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *input_size), device=device)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        return int(counter.get_total_flops())
    except Exception:
        return None
    finally:
        model.train(was_training)


def default_input_size(name: str, in_chans: int | None = None) -> tuple[int, ...]:
    size = tuple(registry.MODELS.entry(name).meta.get("input_size", DEFAULT_INPUT))
    if in_chans is not None:
        size = (int(in_chans), *size[1:])
    return size


def build(name: str, device: str = "meta", **kwargs: Any) -> nn.Module:
    """Create ``name`` with its parameters on ``device`` (``meta``: shapes only)."""
    ctx = torch.device(device) if device != "cpu" else contextlib.nullcontext()
    with ctx:
        return registry.create_model(name, **kwargs)


def model_info(name: str, input_size: tuple[int, ...] | None = None, flops: bool = True,
               **kwargs: Any) -> dict[str, Any]:
    """``{"params": int, "flops": int | None, "input_size": tuple}`` of model ``name`` built
    with ``kwargs`` (``num_classes``, ``in_chans``, ``pool``, ``skip``, ...)."""
    size = tuple(input_size) if input_size is not None else default_input_size(
        name, kwargs.get("in_chans"))
    model = None
    for device in ("meta", "cpu"):
        try:
            model = build(name, device=device, **kwargs)
        except Exception:
            if device == "cpu":
                raise
            continue
        n_flops = count_flops(model, size, device) if flops else None
        if n_flops is None and flops and device == "meta":
            continue  # some ops have no meta kernel: count on the CPU instead
        break
    assert model is not None
    return {"params": count_params(model), "flops": n_flops, "input_size": size}
