"""Adding seeds to an inconclusive claim after looking at it, without fooling ourselves.

``python -m suite run --until-decided --max-seeds N`` runs the claims' committed seeds, then
gives every claim whose interval still straddles a border of its accepted region more seeds,
look by look, until it is decided or has N seeds.

**The caveat.** Looking at the data, adding seeds because the answer is not yet the one
wanted and stopping as soon as it is, is optional stopping: with a 95% interval at every
look, the chance of a wrong verdict grows with each look (towards certainty, given enough
looks). So an extended claim is never judged by the plain 95% interval.

**The correction: alpha spending over a fixed look schedule.**

* Look 0 is the committed seeds (``n0 = len(seeds)`` in tasks.toml), judged as always at
  two-sided α = 0.05 (:data:`suite.verdict.ALPHA`).
* Extra looks happen only at the fixed sizes ``2·n0, 4·n0, 8·n0, …`` (capped at N; the last
  look is at N). Look ``k`` uses a two-sided interval at ``α_k = α / 2^k``: 97.5%, 98.75%,
  99.375%, … The sizes and levels do not depend on the data, so a look that is skipped
  (jumped over because the estimate said it would not suffice) only wastes its share.
* A verdict is wrong at a look only when the interval lies wholly on the wrong side of a
  border, which for a one-sided claim (``higher``/``lower``, absolute or delta) has
  probability ≤ α_k / 2. By the union bound the extra looks together err with probability
  ≤ Σ α_k / 2 < α / 2 = 2.5%, however many there are: the same as look 0 alone. A one-sided
  claim decided by extension therefore has a worst-case error of ≤ 5% (2.5% for look 0 +
  2.5% for all later looks) instead of 2.5% for a fixed-n verdict: bounded, and the report
  labels such verdicts with their look and level. For a two-sided ``equal`` claim the
  bounds are twice these. Without the correction the bound would be 2.5% × (number of looks).
* How far to jump: the smallest scheduled size at which the observed spread would decide
  the claim at that look's level (:func:`suite.verdict.seeds_to_decide`), else N. A claim
  whose mean sits exactly on a border is not extended (no number of seeds decides it).

The report finds the extra runs by their seeds (:func:`extension_seeds` is deterministic) and
judges them at the level of the look their count reaches (:func:`look_index`), so
``python -m suite report`` shows the same sequential verdict later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suite.verdict import ALPHA, seeds_to_decide

#: How far the report looks for extra seeds of an extended claim (total seeds per claim).
PROBE_SEEDS = 64


def look_sizes(n0: int, max_seeds: int) -> list[int]:
    """Sample sizes of the extra looks: ``2·n0, 4·n0, …`` below ``max_seeds``, then it."""
    if n0 < 1:
        raise ValueError("a claim needs at least one committed seed")
    sizes, n = [], n0
    while n < max_seeds:
        n = min(2 * n, max_seeds)
        sizes.append(n)
    return sizes


def look_index(n0: int, n: int) -> int:
    """The look that ``n`` seeds belong to: 0 for ``n ≤ n0``, else ``⌈log2(n / n0)⌉`` (a
    count between two scheduled sizes is judged at the later, stricter look)."""
    if n <= n0:
        return 0
    return math.ceil(math.log2(n / n0) - 1e-12)


def look_alpha(k: int, alpha: float = ALPHA) -> float:
    """Two-sided level of look ``k``: ``α / 2^k`` (look 0: the fixed-n α)."""
    return alpha / 2**k


def extension_seeds(committed: tuple[int, ...] | list[int], total: int) -> list[int]:
    """The extra seeds that bring ``committed`` to ``total`` seeds: the smallest non-negative
    integers not already used, in increasing order (deterministic, so a later report finds
    the same runs)."""
    used, out, s = set(committed), [], 0
    while len(committed) + len(out) < total:
        if s not in used:
            out.append(s)
        s += 1
    return out


@dataclass(frozen=True)
class Step:
    """What ``--until-decided`` does next for one claim: run up to ``target`` seeds (None:
    leave it), and why."""

    claim_id: str
    n: int
    target: int | None
    reason: str


def next_step(claim_id: str, verdict, n0: int, max_seeds: int) -> Step:
    """Decide whether and how far to extend one claim from its current verdict."""
    s = verdict.summary
    n = s.n if s is not None else 0
    if verdict.status != "inconclusive" or verdict.region is None or s is None or n < 2:
        return Step(claim_id, n, None, f"not extended: {verdict.status}")
    if n >= max_seeds:
        return Step(claim_id, n, None, f"not extended: already {n} seeds (--max-seeds "
                                       f"{max_seeds})")
    lo, hi = verdict.region
    sizes = [m for m in look_sizes(n0, max_seeds) if m > n]
    if not sizes:
        return Step(claim_id, n, None, "not extended: no look left below --max-seeds")
    for m in sizes:
        need = seeds_to_decide(s, lo, hi, look_alpha(look_index(n0, m)))
        if need is None:
            return Step(claim_id, n, None, "not extended: the mean sits on a border of the "
                                           "accepted region (no number of seeds decides it)")
        if need <= m:
            return Step(claim_id, n, m, f"≈{need} seeds would decide it at look "
                                        f"{look_index(n0, m)}'s level; running {m}")
    return Step(claim_id, n, sizes[-1], f"the observed spread would need ≈{need} seeds; "
                                        f"running the last look ({sizes[-1]})")


def extend_until_decided(engine, sched, claims, tier: str, max_seeds: int,
                         device: str | None, outcome, console) -> list[Step]:
    """The ``--until-decided`` loop: judge, extend the straddling claims to their next look,
    run, repeat until no claim moves. ``outcome`` (the scheduler's) collects the new runs.
    Returns the last step taken per claim."""
    from suite.plan import plan_claim
    from suite.report import claim_rows, straddles

    last: dict[str, Step] = {}
    for _ in range(64):  # each round moves every extended claim to a strictly larger look
        specs, seen = [], set()
        for row in claim_rows(engine, claims, tier):
            if not straddles(row):
                continue
            form = row.claim.form(tier)
            step = next_step(row.claim.id, row.verdict, len(form.seeds), max_seeds)
            if last.get(row.claim.id) == step:  # already tried this target: runs failed
                step = Step(step.claim_id, step.n, None, "not extended again: the last "
                                                        "extension's runs did not all succeed")
            last[row.claim.id] = step
            console.print(f"[bold]until-decided[/] {row.claim.id}: n={step.n}; {step.reason}")
            if step.target is None:
                continue
            seeds = tuple(form.seeds) + tuple(extension_seeds(form.seeds, step.target))
            for r in plan_claim(row.claim, tier, seeds, device).runs:
                if r.run_key not in seen:
                    seen.add(r.run_key)
                    specs.append(r)
        if not specs:
            break
        more = sched.run(specs)
        outcome.ran.extend(more.ran)
    return list(last.values())
