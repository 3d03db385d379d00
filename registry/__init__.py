"""The suite's vocabulary: pooling/shortcut operators, models and datasets, by name.

Importing this package does not import torch: every entry is registered lazily as
``"module:attr"`` in the ``__init__`` of its sub-package (``registry.pools``,
``registry.models``, ``registry.datasets``), and the family module is imported on
first use. That keeps ``python -m suite validate`` and the dashboard torch-free.

    >>> import registry
    >>> "softpool" in registry.POOLS
    True
"""

from __future__ import annotations

from typing import Any

from registry._registry import Entry, Registry, UnknownNameError, did_you_mean
from registry.datasets import DATASETS
from registry.models import MODELS
from registry.pools import POOLS

__all__ = [
    "DATASETS",
    "MODELS",
    "POOLS",
    "Entry",
    "Registry",
    "UnknownNameError",
    "create_dataset",
    "create_model",
    "create_pool",
    "did_you_mean",
]


def create_pool(name: Any, /, **kwargs: Any) -> Any:
    """Build a pooling/shortcut ``nn.Module`` by registered name.

    A class or other callable passes through (it is called with ``kwargs``), so model code
    can take ``pool=`` as either a name or a constructor.
    """
    if callable(name):
        return name(**kwargs)
    return POOLS.create(name, **kwargs)


def create_model(name: str, /, **kwargs: Any) -> Any:
    """Build a model by registered name, e.g. ``create_model("all_cnn_c", num_classes=10)``."""
    return MODELS.create(name, **kwargs)


def create_dataset(name: str, /, **kwargs: Any) -> Any:
    """Load a dataset by registered name; returns a :class:`registry.datasets.base.DataBundle`."""
    return DATASETS.create(name, **kwargs)
