"""Name → factory registries with aliases, lazy imports and did-you-mean errors.

Every vocabulary of the suite (pools, models, datasets, tasks) is one :class:`Registry`.
Entries are *lazy*: a registry maps a name to ``"module.path:attr"`` and imports the
module only when the entry is created. So ``python -m suite validate`` and ``plan`` can
check every name in ``tasks.toml`` without importing torch, while ``create`` builds the
real object. A family module may also register a callable directly (``register``).

Learned from timm's ``register_model`` and lm-evaluation-harness's task index.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


class UnknownNameError(KeyError):
    """A name in no registry; ``str()`` names the registry and suggests the closest names."""

    def __init__(self, kind: str, name: str, suggestions: list[str], known: list[str]):
        self.kind, self.name, self.suggestions, self.known = kind, name, suggestions, known
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            f"unknown {kind} {name!r}.{hint} Run `python -m suite ls {kind}s` to list all "
            f"{len(known)} {kind}s."
        )

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def did_you_mean(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Closest matches of ``name`` in ``choices`` (case-insensitive), best first."""
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.55)
    return [lowered[h] for h in hits]


@dataclass(frozen=True)
class Entry:
    """One registered name. ``target`` is a callable or a lazy ``"module:attr"`` string."""

    name: str
    target: Callable[..., Any] | str
    aliases: tuple[str, ...] = ()
    help: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """A named set of factories: ``reg.create("name", **kwargs)``.

    >>> r = Registry("widget")
    >>> r.register("double", lambda x: 2 * x, aliases=("twice",))
    >>> r.create("twice", x=3)
    6
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        target: Callable[..., Any] | str,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        help: str = "",
        **meta: Any,
    ) -> None:
        key = self._norm(name)
        if key in self._entries or key in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        norm_aliases = [self._norm(a) for a in aliases]
        for alias, a in zip(aliases, norm_aliases, strict=True):
            if a in self._entries or a in self._aliases or a == key:
                raise ValueError(f"{self.kind} alias {alias!r} clashes with an existing name")
        self._entries[key] = Entry(key, target, tuple(aliases), help, dict(meta))
        for a in norm_aliases:
            self._aliases[a] = key

    def decorator(self, name: str | None = None, **kw: Any) -> Callable[[Callable], Callable]:
        """``@REG.decorator()`` registers a function under its own name (or ``name``)."""

        def wrap(fn: Callable) -> Callable:
            self.register(name or fn.__name__, fn, **kw)
            return fn

        return wrap

    # -- lookup -------------------------------------------------------------------------
    @staticmethod
    def _norm(name: str) -> str:
        return name.strip().lower().replace("-", "_")

    def resolve(self, name: str) -> str:
        """Canonical name for ``name`` or an alias; raises :class:`UnknownNameError`."""
        key = self._norm(name)
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        everything = list(self._entries) + list(self._aliases)
        raise UnknownNameError(self.kind, name, did_you_mean(key, everything), self.names())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._norm(name)
        return key in self._entries or key in self._aliases

    def entry(self, name: str) -> Entry:
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> Callable[..., Any]:
        """The factory behind ``name`` (imports its module on first use)."""
        return self.entry(name).load()

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[k] for k in self.names())

    def __len__(self) -> int:
        return len(self._entries)
