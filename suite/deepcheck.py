"""Deeper validation of claims: keyword arguments against the real factory signatures.

Imports the registries' modules (and so torch); used by ``python -m suite validate``
(``--shallow`` skips it). Catches a misspelt ``model_args`` / ``dataset_args`` key or a
``params`` key that the task does not know, before any run starts — in the recipe and in a
sweep's search space, whose every choice and range end must also pass the task's own
parameter check (``resolve_params``).
"""

from __future__ import annotations

import inspect
from typing import Any

from registry import DATASETS, MODELS, did_you_mean
from suite.errors import ClaimsError, SpecProblem
from suite.plan import baseline_form
from suite.specs import Claim, TierForm
from tasks import TASKS


def _accepted(fn: Any) -> set[str] | None:
    """Keyword names ``fn`` accepts, or None when it takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY,
                                                                p.POSITIONAL_OR_KEYWORD)}


def _check_keys(problems: list[SpecProblem], where: str, field: str, given: dict,
                accepted: set[str] | None, owner: str) -> None:
    if accepted is None:
        return
    for k in given:
        if k not in accepted:
            hint = did_you_mean(k, sorted(accepted), n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            problems.append(SpecProblem(where, f"{field}.{k}",
                                        f"{owner} takes no argument {k!r}.{extra} It takes: "
                                        f"{', '.join(sorted(accepted))}."))


def _task_params(task: str) -> set[str] | None:
    if task == "train_eval":
        from tasks.train_eval import DEFAULTS

        return set(DEFAULTS)
    mod = inspect.getmodule(TASKS.get(task))
    known = getattr(mod, "DEFAULTS", None)
    return set(known) if isinstance(known, dict) else None


def check_form(where: str, prefix: str, form: TierForm, problems: list[SpecProblem]) -> None:
    for field, reg, args in (("model", MODELS, form.model_args),
                             ("dataset", DATASETS, form.dataset_args)):
        name = getattr(form, field)
        if not name:
            continue  # a task that needs no model/dataset (e.g. kernel_bench)
        try:
            fn = reg.get(name)
        except Exception as e:  # an entry whose module is broken
            problems.append(SpecProblem(where, prefix + field, f"cannot import {name!r}: {e}"))
            continue
        _check_keys(problems, where, f"{prefix}{field}_args", args, _accepted(fn),
                    f"{field} {name!r}")
    _check_keys(problems, where, prefix + "params", form.params, _task_params(form.task),
                f"task {form.task!r}")


def check_sweep(where: str, prefix: str, form: TierForm, problems: list[SpecProblem]) -> None:
    """The sweep's parameter paths exist (did-you-mean) and its values are valid params."""
    from suite.sweep import apply_point

    assert form.sweep is not None
    first = {p.path: (p.choices[0] if p.choices else p.low) for p in form.sweep.space}
    check_form(where, prefix + "sweep.", apply_point(form, first), problems)
    resolve = getattr(inspect.getmodule(TASKS.get(form.task)), "resolve_params", None)
    if resolve is None:
        return
    known = _task_params(form.task) or set()
    checked = [p for p in form.sweep.space  # unknown keys and model_args are reported above
               if p.path.split(".")[0] == "params" and p.path.split(".")[1] in known]
    base = {p.path: first[p.path] for p in checked}
    for p in checked:
        for value in (p.choices if p.choices is not None else (p.low, p.high)):
            trial = apply_point(form, {**base, p.path: value})
            try:
                resolve({**trial.params, "val_split": form.sweep.val_split,
                         "objective": form.sweep.metric})
            except (ValueError, TypeError) as e:
                problems.append(SpecProblem(where, f"{prefix}sweep.{p.path}",
                                            f"value {value!r}: {e}"))


def deep_check(path: str, claims: list[Claim]) -> None:
    problems: list[SpecProblem] = []
    for c in claims:
        for tier, form in sorted(c.tiers.items(), key=lambda kv: kv[0] != "full"):
            where = f"claim '{c.id}'"
            prefix = "" if tier == "full" else f"tiers.{tier}."
            check_form(where, prefix, form, problems)
            if form.sweep is not None:
                check_sweep(where, prefix, form, problems)
            if form.expect is not None and form.expect.kind == "delta":
                check_form(where, prefix + "expect.baseline.", baseline_form(form), problems)
    seen, unique = set(), []
    for p in problems:  # the full form is checked first, so its field names win
        if (p.where, p.message) not in seen:
            seen.add((p.where, p.message))
            unique.append(p)
    if unique:
        raise ClaimsError(path, unique)
