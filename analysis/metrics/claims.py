"""The original notebook's conclusions, tested against the numbers.

Claims about clock rate use Spearman's rank correlation over VM-trials; the
claim about the variation compares the two experiments' VM-trials with a
permutation test. A claim is supported or contradicted only at p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from analysis.metrics.stats import Correlation, Difference, difference, p_value
from analysis.metrics.summaries import ExperimentSummary

ALPHA = 0.05


class Support(StrEnum):
    SUPPORTED = "supported"
    PARTLY = "partly supported"
    CONTRADICTED = "contradicted"
    INCONCLUSIVE = "inconclusive"
    UNTESTED = "not testable here"


@dataclass(frozen=True, slots=True)
class Claim:
    statement: str
    scope: str  # the experiment(s) it was tested on
    support: Support
    evidence: str


_RATE_CLAIMS: tuple[tuple[str, Callable[[ExperimentSummary], Correlation], str], ...] = (
    ("Slower VMs make larger logical clock jumps", lambda s: s.rate_vs_jump, "mean jump"),
    ("Slower VMs build longer queues", lambda s: s.rate_vs_queue, "mean queue length"),
    ("Fast VMs drift less", lambda s: s.rate_vs_lag, "mean lag behind the fastest VM"),
)


def judge(summaries: list[ExperimentSummary]) -> list[Claim]:
    """Every claim, for every experiment it can be tested on."""
    claims = [
        _rate_claim(statement, summary, pick(summary), what)
        for statement, pick, what in _RATE_CLAIMS
        for summary in summaries
    ]
    claims.append(_variation_claim(summaries))
    return claims


def _rate_claim(statement: str, summary: ExperimentSummary, c: Correlation, what: str) -> Claim:
    if summary.rate_low == summary.rate_high:
        return Claim(statement, summary.name, Support.UNTESTED, "every VM ran at the same rate")
    if math.isnan(c.rho):
        why = f"too few VM-trials with a {what} to rank, or all equal (n = {c.n})"
        return Claim(statement, summary.name, Support.UNTESTED, why)
    evidence = f"rank correlation of configured rate with {what}: {c}"
    if c.p >= ALPHA:
        return Claim(statement, summary.name, Support.INCONCLUSIVE, evidence + "; not significant")
    support = Support.SUPPORTED if c.rho < 0 else Support.CONTRADICTED
    return Claim(statement, summary.name, support, evidence)


def _variation_claim(summaries: list[ExperimentSummary]) -> Claim:
    statement = "The variation (rates 4-5, event range 5) shrinks jumps, drift and queues"
    pair = _baseline_and_variation(summaries)
    if pair is None:
        return Claim(
            statement,
            "",
            Support.UNTESTED,
            "needs two experiments: run both `original` and `variation` trials",
        )
    base, variation = pair
    scope = f"{variation.name} vs {base.name}"
    tests = {
        "mean jump": difference(base.column("jump_mean"), variation.column("jump_mean")),
        "mean lag": difference(base.column("lag_mean"), variation.column("lag_mean")),
        "mean queue": difference(base.column("queue_mean"), variation.column("queue_mean")),
    }
    evidence = "; ".join(f"{name} {_change(d)}" for name, d in tests.items())
    shrank = [d.delta < 0 and d.p < ALPHA for d in tests.values()]
    grew = [d.delta > 0 and d.p < ALPHA for d in tests.values()]
    if all(shrank):
        support = Support.SUPPORTED
    elif any(grew):
        support = Support.CONTRADICTED
    elif any(shrank):
        support = Support.PARTLY
    else:
        support = Support.INCONCLUSIVE
    return Claim(statement, scope, support, evidence)


def _baseline_and_variation(
    summaries: list[ExperimentSummary],
) -> tuple[ExperimentSummary, ExperimentSummary] | None:
    """`original` and `variation` by name, else the widest and the narrowest rate range."""
    if len(summaries) < 2:
        return None
    named = {s.name: s for s in summaries}
    if "original" in named and "variation" in named:
        return named["original"], named["variation"]
    by_range = sorted(summaries, key=lambda s: s.rate_high - s.rate_low)
    return by_range[-1], by_range[0]


def _change(d: Difference) -> str:
    if math.isnan(d.p):
        return f"{d.a_mean:.2f} → {d.b_mean:.2f} (too few VM-trials to test)"
    return f"{d.a_mean:.2f} → {d.b_mean:.2f} ({d.relative:+.0%}, {p_value(d.p)})"
