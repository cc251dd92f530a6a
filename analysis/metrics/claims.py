"""The original notebook's conclusions, and the queueing model's, tested against the numbers.

Claims about clock rate use Spearman's rank correlation over VM-trials; the
claims about the variation compare the two experiments' VM-trials (or trials)
with a permutation test. The model's claims compare its predictions with the
measurement over every VM-trial. A claim is supported or contradicted only at p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from analysis.columns import Floats
from analysis.metrics.queueing import Prediction
from analysis.metrics.stats import (
    PERMUTATIONS,
    Correlation,
    Difference,
    difference,
    p_value,
    spearman,
)
from analysis.metrics.summaries import ExperimentSummary
from analysis.metrics.trial import VmMetrics

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


def _receive_share(s: ExperimentSummary) -> Floats:
    return np.array([vm.share(vm.receive) for t in s.trials for vm in t.vms], dtype=np.float64)


def _send_share(s: ExperimentSummary) -> Floats:
    return np.array([vm.share(vm.send) for t in s.trials for vm in t.vms], dtype=np.float64)


def _receive_rate(s: ExperimentSummary) -> Floats:
    return np.array(
        [vm.receive / t.duration if t.duration > 0 else np.nan for t in s.trials for vm in t.vms],
        dtype=np.float64,
    )


def _queue_spread(s: ExperimentSummary) -> Floats:
    """Per trial: the longest mean queue of a VM minus the shortest (0: balanced)."""
    return np.array(
        [max(vm.queue_mean for vm in t.vms) - min(vm.queue_mean for vm in t.vms) for t in s.trials],
        dtype=np.float64,
    )


_RATE_CLAIMS: tuple[tuple[str, Callable[[ExperimentSummary], Correlation], str], ...] = (
    ("Slower VMs make larger logical clock jumps", lambda s: s.rate_vs_jump, "mean jump"),
    ("Slower VMs build longer queues", lambda s: s.rate_vs_queue, "mean queue length"),
    ("Fast VMs drift less", lambda s: s.rate_vs_lag, "mean lag behind the fastest VM"),
    (
        "Slower VMs spend their ticks receiving",
        lambda s: spearman(s.column("rate"), _receive_share(s)),
        "receive share of ticks",
    ),
)

# The variation against the original: (statement, the direction it claims, what to compare).
_VARIATION_CLAIMS: tuple[
    tuple[str, int, tuple[tuple[str, Callable[[ExperimentSummary], Floats]], ...]], ...
] = (
    (
        "The variation (rates 4-5, event range 5) makes smaller jumps and less drift",
        -1,
        (
            ("mean jump", lambda s: s.column("jump_mean")),
            ("mean lag", lambda s: s.column("lag_mean")),
        ),
    ),
    (
        "The variation sends more and synchronises more (more ticks send, more receives a second)",
        +1,
        (("send share", _send_share), ("receives per simulated second", _receive_rate)),
    ),
    (
        "The variation balances the queues",
        -1,
        (("spread of mean queue length between a trial's VMs", _queue_spread),),
    ),
)


def judge(summaries: list[ExperimentSummary]) -> list[Claim]:
    """Every claim, for every experiment it can be tested on."""
    claims = [
        _rate_claim(statement, summary, pick(summary), what)
        for statement, pick, what in _RATE_CLAIMS
        for summary in summaries
    ]
    claims += [_variation_claim(summaries, *claim) for claim in _VARIATION_CLAIMS]
    return claims + model_claims(summaries)


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


def _variation_claim(
    summaries: list[ExperimentSummary],
    statement: str,
    direction: int,
    measures: tuple[tuple[str, Callable[[ExperimentSummary], Floats]], ...],
) -> Claim:
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
    tests = {name: difference(pick(base), pick(variation)) for name, pick in measures}
    evidence = "; ".join(f"{name} {_change(d)}" for name, d in tests.items())
    as_claimed = [d.delta * direction > 0 and d.p < ALPHA for d in tests.values()]
    against = [d.delta * direction < 0 and d.p < ALPHA for d in tests.values()]
    if all(as_claimed):
        support = Support.SUPPORTED
    elif any(against):
        support = Support.CONTRADICTED
    elif any(as_claimed):
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


# The model's claims: how close it must come, and the VMs on which its growth call is judged.
SHARE_TOLERANCE = 0.05  # mean |predicted - measured| receive share
GROWTH_ACCURACY = 0.95
CLEAR_LOAD = 0.1  # |lambda / mu - 1| at least this: the queue clearly grows or clearly drains


def model_claims(summaries: list[ExperimentSummary]) -> list[Claim]:
    """Does the queueing model predict the receive shares and the growing queues?"""
    pairs = [
        (vm, model)
        for s in summaries
        for t in s.trials
        for vm in t.vms
        if (model := t.predicted(vm.vm)) is not None and vm.ticks
    ]
    scope = _scope(summaries)
    return [_share_claim(pairs, scope), _growth_claim(pairs, scope)]


def _scope(summaries: list[ExperimentSummary], named: int = 4) -> str:
    """The experiments a claim covers; a sweep's hundred cells are counted, not listed."""
    names = [s.name for s in summaries]
    if len(names) <= named:
        return ", ".join(names)
    return f"{', '.join(names[:named])} and {len(names) - named} more"


def _share_claim(pairs: list[tuple[VmMetrics, Prediction]], scope: str) -> Claim:
    statement = "The queueing model predicts each VM's receive share"
    predicted = np.array([m.receive_share for _, m in pairs], dtype=np.float64)
    measured = np.array([vm.share(vm.receive) for vm, _ in pairs], dtype=np.float64)
    c = spearman(predicted, measured)
    if math.isnan(c.rho):
        why = f"too few VM-trials with a prediction, or all equal (n = {c.n})"
        return Claim(statement, scope, Support.UNTESTED, why)
    error = float(np.abs(predicted - measured).mean())
    evidence = (
        f"mean |predicted - measured| = {error:.4f} over {len(pairs)} VM-trials "
        f"(tolerance {SHARE_TOLERANCE}); rank correlation {c}"
    )
    if c.p >= ALPHA:
        support = Support.INCONCLUSIVE
    elif c.rho < 0:
        support = Support.CONTRADICTED
    else:
        support = Support.SUPPORTED if error <= SHARE_TOLERANCE else Support.PARTLY
    return Claim(statement, scope, support, evidence)


def _growth_claim(pairs: list[tuple[VmMetrics, Prediction]], scope: str) -> Claim:
    statement = "The queueing model predicts which queues grow (lambda > mu)"
    clear = [(vm, m) for vm, m in pairs if abs(m.load - 1) >= CLEAR_LOAD]
    predicted = np.array([m.queue_grows for _, m in clear], dtype=bool)
    measured = np.array([vm.queue_unbounded for vm, _ in clear], dtype=bool)
    if not len(clear):
        why = f"no VM-trial with |lambda/mu - 1| >= {CLEAR_LOAD} (of {len(pairs)})"
        return Claim(statement, scope, Support.UNTESTED, why)
    right = int(np.count_nonzero(predicted == measured))
    everywhere = sum(m.queue_grows == vm.queue_unbounded for vm, m in pairs)
    accuracy = right / len(clear)
    p = agreement_p(predicted, measured)
    evidence = (
        f"right on {right} of {len(clear)} VM-trials with |lambda/mu - 1| >= {CLEAR_LOAD} "
        f"({accuracy:.0%}; {everywhere} of {len(pairs)} over all); "
        f"{int(measured.sum())} grew, {int(predicted.sum())} predicted to"
    )
    if math.isnan(p):
        evidence += "; every VM-trial in one class, so no test against chance"
        support = Support.INCONCLUSIVE
    else:
        evidence += f"; permutation test against chance: {p_value(p)}"
        if p >= ALPHA:
            support = Support.INCONCLUSIVE
        else:
            support = Support.SUPPORTED if accuracy >= GROWTH_ACCURACY else Support.PARTLY
    return Claim(statement, scope, support, evidence)


def agreement_p(predicted: npt.NDArray[np.bool_], measured: npt.NDArray[np.bool_]) -> float:
    """How often shuffled labels agree with the predictions as well as the real ones do
    (nan when either side is all one class: then any shuffle agrees equally)."""
    if predicted.all() or not predicted.any() or measured.all() or not measured.any():
        return float("nan")
    observed = int(np.count_nonzero(predicted == measured))
    rounds = PERMUTATIONS
    shuffled = np.random.default_rng(0).permuted(np.tile(measured, (rounds, 1)), axis=1)
    null = np.count_nonzero(shuffled == predicted, axis=1)
    return (int(np.count_nonzero(null >= observed)) + 1) / (rounds + 1)
