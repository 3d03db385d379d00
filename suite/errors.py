"""Errors the engine reports to users. Each names what is wrong, where, and the fix."""

from __future__ import annotations

from dataclasses import dataclass


class SuiteError(Exception):
    """Base of errors printed to the user without a traceback (exit code 2)."""


@dataclass(frozen=True)
class SpecProblem:
    """One problem in tasks.toml: which claim (or table), which field, what is wrong."""

    where: str  # "claim 'allconv/c10/all_cnn_c'" or "[defaults]" or "[papers.x]"
    field: str  # dotted path, e.g. "tiers.mini.model_args.pool"
    message: str

    def __str__(self) -> str:
        return f"{self.where}, field '{self.field}': {self.message}"


class ClaimsError(SuiteError):
    """tasks.toml does not validate. Holds every problem found, not only the first."""

    def __init__(self, path: str, problems: list[SpecProblem]):
        self.path, self.problems = path, problems
        lines = "\n".join(f"  - {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{path}: {n} problem{'s' if n != 1 else ''}; nothing was run.\n{lines}")


class DatabaseError(SuiteError):
    """The results database URL is malformed, unreachable, or its schema is newer than ours."""
