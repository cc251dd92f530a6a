"""What the clocks promise, judged over every trial of an experiment (docs/clocks.md).

Three claims, each with its numbers:
- the HLC stays within ε of physical time: l - pt <= ε on every event, ε being how
  far two VMs' physical clocks may disagree in the trial (`epsilon` below);
- the HLC's counter stays within Kulkarni et al.'s bound c <= N·(ε + 1), ε in the
  unit physical time is read in, where each VM's physical clock advances between
  two of its events;
- Lamport's lead over physical time grows with how much faster the fastest VM
  ticks (the rate ratio), and the HLC's does not: Spearman over VM-trials.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.clocks import bloom, hlc, lamport
from analysis.clocks.trace import Trace
from analysis.columns import Floats, TrialLog
from analysis.metrics.claims import ALPHA, Claim, Support
from analysis.metrics.stats import spearman
from analysis.offsets import placement, trial_offsets

CONFIGURED = "configured skew"
RESOLUTION = 1  # microseconds: two readings of pt, each rounded, may differ by one more


@dataclass(frozen=True, slots=True)
class Epsilon:
    """How far two VMs' physical clocks may disagree in a trial, and what says so."""

    seconds: float
    source: str

    @property
    def units(self) -> int:
        """ε in pt's unit, microseconds, with the rounding of the readings."""
        return round(self.seconds * hlc.MICROSECONDS) + RESOLUTION


def epsilon(trial: TrialLog) -> Epsilon | None:
    """The trial's ε, the one place that decides it (docs/clocks.md). On one node, the spread
    of the configured skew: the VMs share the node's clock. Across nodes, the nodes' own clocks
    add theirs: from the orchestrator's reads of every node, else the widest difference the
    messages' offset bounds allow. None when a VM's configuration is not in its logs, or when
    nothing bounds some pair of VMs on different nodes."""
    offsets = {f.vm: f.config.clock_offset for f in reversed(trial.files) if f.config}
    if sorted(offsets) != list(range(trial.vms)):
        return None
    nodes, _ = placement(trial.manifest, trial.vms)
    if len(nodes) <= 1:
        return Epsilon(max(offsets.values()) - min(offsets.values()), CONFIGURED)
    bounds = trial_offsets(trial)
    measured = bounds.measured_spread()
    if measured is not None:
        return Epsilon(measured, "measured node offsets")
    widest = float(bounds.vms.closed().high.max())
    return Epsilon(widest, "the messages' offset bounds") if math.isfinite(widest) else None


@dataclass(frozen=True, slots=True)
class TrialClocks:
    """What the claims and the report's clock comparison read from one trial: per VM, and
    counts over its events."""

    experiment: str
    name: str
    epsilon: Epsilon | None
    rates: tuple[float, ...]  # configured, ticks per simulated second
    lamport_lead: tuple[float, ...]  # largest lead of Lamport's clock, wall seconds (nan: none)
    hlc_lead: tuple[float, ...]  # largest l - pt, seconds
    hlc_c: tuple[float, ...]  # largest c
    bloom_fp: tuple[float, ...]  # the Bloom clock's false-positive rate
    events: int
    beyond_epsilon: int  # events whose l - pt exceeds ε
    still_clock: int  # events whose pt did not advance past their VM's previous event's

    @property
    def vms(self) -> int:
        return len(self.rates)

    @property
    def counter_bound(self) -> int | None:
        """N·(ε + 1), in microseconds as pt is."""
        return None if self.epsilon is None else self.vms * (self.epsilon.units + 1)

    @property
    def rate_ratio(self) -> tuple[float, ...]:
        """Per VM, the fastest VM's rate over its own: 1 for the fastest."""
        fastest = max(self.rates, default=float("nan"))
        return tuple(fastest / r if r > 0 else float("nan") for r in self.rates)

    @classmethod
    def of(cls, trial: TrialLog, trace: Trace) -> TrialClocks:
        clock = hlc.recompute(trace)
        lead = lamport.lead(trace, lamport.recompute(trace))
        slices = trace.vm_slices()
        eps = epsilon(trial)
        beyond = -1 if eps is None else int(np.count_nonzero(clock.l - clock.pt > eps.units))
        still = sum(int(np.count_nonzero(np.diff(clock.pt[s]) <= 0)) for s in slices)
        return cls(
            experiment=trial.manifest.experiment,
            name=trial.name,
            epsilon=eps,
            rates=tuple(trial.rate(v) for v in range(trace.vms)),
            lamport_lead=_per_vm(lead, slices),
            hlc_lead=_per_vm(clock.lead, slices),
            hlc_c=_per_vm(clock.c.astype(np.float64), slices),
            bloom_fp=bloom.figures(trial, trace).columns["bloom FP rate"],
            events=len(trace),
            beyond_epsilon=beyond,
            still_clock=still,
        )


def _per_vm(values: Floats, slices: list[slice]) -> tuple[float, ...]:
    return tuple(float(values[s].max()) if s.stop > s.start else float("nan") for s in slices)


def judge_clocks(trials: Sequence[TrialClocks]) -> list[Claim]:
    """The three claims for every experiment, in the order experiments first appear."""
    experiments = list(dict.fromkeys(t.experiment for t in trials))
    claims = []
    for name in experiments:
        mine = [t for t in trials if t.experiment == name]
        claims += [_within_epsilon(name, mine), _counter_bound(name, mine), _leads(name, mine)]
    return claims


def _within_epsilon(scope: str, trials: list[TrialClocks]) -> Claim:
    statement = "HLC stays within ε of physical time (l − pt <= ε on every event)"
    judged = [t for t in trials if t.epsilon is not None and t.events]
    if not judged:
        why = (
            "no trial with a known ε: each VM's clock offset in its logs and, across nodes, "
            "a read of every node's clock or messages that bound every pair of VMs"
        )
        return Claim(statement, scope, Support.UNTESTED, why)
    events = sum(t.events for t in judged)
    beyond = sum(t.beyond_epsilon for t in judged)
    worst = max(judged, key=lambda t: _largest(t.hlc_lead) - _seconds(t))
    sources = Counter(t.epsilon.source for t in judged if t.epsilon)
    skewed = sum(_seconds(t) > 0 for t in judged if t.epsilon and t.epsilon.source == CONFIGURED)
    evidence = (
        f"{events - beyond} of {events} events within ε ({(events - beyond) / events:.2%}) over "
        f"{len(judged)} trials (ε from {', '.join(f'{s} on {n}' for s, n in sources.items())}; "
        f"{skewed} with skew); worst {worst.name}: largest l − pt "
        f"{_largest(worst.hlc_lead):.6f} s against ε = {_seconds(worst):g} s + {RESOLUTION} µs "
        f"({worst.epsilon.source if worst.epsilon else ''})"
    )
    support = Support.SUPPORTED if beyond == 0 else Support.CONTRADICTED
    return Claim(statement, scope, support, evidence)


def _counter_bound(scope: str, trials: list[TrialClocks]) -> Claim:
    statement = "HLC's counter stays within its bound (c <= N·(ε + 1), ε in µs)"
    known = [t for t in trials if t.counter_bound is not None and t.events]
    judged = [t for t in known if t.still_clock == 0]
    premise = (
        f"; {len(known) - len(judged)} trial(s) left out: a VM's physical clock stood still "
        "between two of its events, which the bound assumes it never does"
        if len(judged) < len(known)
        else ""
    )
    if not judged:
        why = "no trial with a known ε and a physical clock that advances between events"
        return Claim(statement, scope, Support.UNTESTED, why + premise)
    worst = max(judged, key=lambda t: _largest(t.hlc_c) / (t.counter_bound or 1))
    over = [t for t in judged if _largest(t.hlc_c) > (t.counter_bound or 0)]
    evidence = (
        f"largest c {max(_largest(t.hlc_c) for t in judged):g} over {len(judged)} trials; "
        f"nearest its bound: {worst.name}, c = {_largest(worst.hlc_c):g} against "
        f"N·(ε + 1) = {worst.vms}·({worst.epsilon.units if worst.epsilon else 0} + 1) = "
        f"{worst.counter_bound}; {len(over)} trial(s) over it" + premise
    )
    support = Support.SUPPORTED if not over else Support.CONTRADICTED
    return Claim(statement, scope, support, evidence)


def _leads(scope: str, trials: list[TrialClocks]) -> Claim:
    statement = "Lamport's drift grows with the rate ratio; HLC's does not"
    ratio = _column(trials, "rate_ratio")
    lamport_lead, hlc_lead = _column(trials, "lamport_lead"), _column(trials, "hlc_lead")
    if len(set(ratio[~np.isnan(ratio)].tolist())) < 2:
        return Claim(statement, scope, Support.UNTESTED, "every VM ran at the same rate ratio")
    lam, hl = spearman(ratio, lamport_lead), spearman(ratio, hlc_lead)
    if math.isnan(lam.rho):
        why = f"too few VM-trials with a Lamport lead to rank, or all equal (n = {lam.n})"
        return Claim(statement, scope, Support.UNTESTED, why)
    known = hlc_lead[~np.isnan(hlc_lead)]
    hlc_words = (
        str(hl)
        if not math.isnan(hl.rho)
        else f"the same ({known[0] if len(known) else math.nan:.6f} s) on every VM-trial"
    )
    evidence = (
        f"rank correlation of the fastest rate over the VM's own with Lamport's lead: {lam}; "
        f"with HLC's largest l − pt: {hlc_words}"
    )
    hlc_grows = hl.rho > 0 and hl.p < ALPHA
    if lam.p >= ALPHA:
        support = Support.INCONCLUSIVE
    elif lam.rho < 0:
        support = Support.CONTRADICTED
    else:
        support = Support.PARTLY if hlc_grows else Support.SUPPORTED
    return Claim(statement, scope, support, evidence)


def _largest(values: tuple[float, ...]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return max(known) if known else math.nan


def _seconds(t: TrialClocks) -> float:
    return t.epsilon.seconds if t.epsilon else math.nan


def _column(trials: list[TrialClocks], attr: str) -> Floats:
    return np.array([v for t in trials for v in getattr(t, attr)], dtype=np.float64)
