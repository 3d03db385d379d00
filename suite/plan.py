"""Expand claims into :class:`~suite.specs.RunSpec` objects: seed × arm at one tier.

Planning is pure and imports no torch. A delta claim has two arms: ``treatment`` (the
claim's recipe) and ``baseline`` (the recipe with ``expect.baseline`` merged on top), run
with the same seeds and budget so the difference is paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suite.claims import deep_merge
from suite.specs import Claim, RunSpec, TierForm


@dataclass(frozen=True)
class PlannedClaim:
    claim: Claim
    tier: str
    form: TierForm | None
    runs: tuple[RunSpec, ...] = ()
    reason: str = ""  # why there are no runs (no form at this tier, skipped tier, ...)
    skipped: bool = False  # the tier is marked ``skip = "reason"`` in tasks.toml

    def arm(self, arm: str) -> tuple[RunSpec, ...]:
        return tuple(r for r in self.runs if r.arm == arm)


@dataclass(frozen=True)
class Plan:
    tier: str
    claims: tuple[PlannedClaim, ...] = field(default_factory=tuple)

    @property
    def runs(self) -> list[RunSpec]:
        """Every run once (two claims with the same resolved config share their runs)."""
        seen: dict[str, RunSpec] = {}
        for pc in self.claims:
            for r in pc.runs:
                seen.setdefault(r.run_key, r)
        return list(seen.values())


def baseline_form(form: TierForm) -> TierForm:
    """The baseline arm's form: ``expect.baseline`` overrides merged onto the recipe."""
    assert form.expect is not None and form.expect.kind == "delta"
    over = form.expect.baseline
    merged = deep_merge(
        {"task": form.task, "model": form.model, "dataset": form.dataset,
         "model_args": form.model_args, "dataset_args": form.dataset_args,
         "params": form.params},
        over,
    )
    return TierForm(**{**form.__dict__, **merged})


def _specs(claim: Claim, tier: str, form: TierForm, arm: str, seeds: tuple[int, ...],
           device: str | None) -> list[RunSpec]:
    return [
        RunSpec(
            claim_id=claim.id, tier=tier, arm=arm, seed=s, task=form.task, model=form.model,
            dataset=form.dataset, model_args=form.model_args, dataset_args=form.dataset_args,
            params=form.params, device=device or form.device, timeout_s=form.timeout_s,
            claim_hash=claim.definition_hash,
        )
        for s in seeds
    ]


def plan_claim(claim: Claim, tier: str, seeds: tuple[int, ...] | None = None,
               device: str | None = None) -> PlannedClaim:
    form = claim.form(tier)
    if tier in claim.skip:
        return PlannedClaim(claim, tier, None, (), claim.skip[tier], skipped=True)
    if form is None:
        return PlannedClaim(claim, tier, None, (), f"no {tier} form in tasks.toml")
    use = tuple(seeds) if seeds else form.seeds
    runs = _specs(claim, tier, form, "treatment", use, device)
    if form.expect is not None and form.expect.kind == "delta":
        runs += _specs(claim, tier, baseline_form(form), "baseline", use, device)
    return PlannedClaim(claim, tier, form, tuple(runs))


def make_plan(claims: list[Claim], tier: str, seeds: tuple[int, ...] | None = None,
              device: str | None = None) -> Plan:
    return Plan(tier, tuple(plan_claim(c, tier, seeds, device) for c in claims))
