"""Real sockets against the ideal model: a real backend's trials beside the simulator's.

The simulator (vm_node/sim/) runs the VMs' own cores with a fixed delay on the
wire and no scheduler, so run on the same experiment and seeds it is what the
trials would do over an ideal network. Each per-VM figure below is compared
between the two sets of VM-trials; those that differ (p < 0.05) are where the
network shows.

Trials pair up when they share their plan: experiment, trial number, seed and
rates. Where six or more do, each figure gets a paired permutation test on
those trials' VM-trials, VM against the same VM (the seeds cancel out, so it
sees smaller differences than comparing distributions); otherwise a two-sample
Kolmogorov-Smirnov test on every VM-trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.columns import Floats
from analysis.metrics.claims import ALPHA, Claim, Support
from analysis.metrics.stats import (
    PairedShift,
    Shift,
    kolmogorov_smirnov,
    mean,
    paired_permutation,
)
from analysis.metrics.trial import TrialMetrics, VmMetrics

STATEMENT = "Real sockets behave like the ideal model (the simulator on the same seeds)"
PAIRED, UNPAIRED = "paired permutation", "Kolmogorov-Smirnov"
# Trials: flipping g trials' signs gives 2^g outcomes, the observed one and its mirror the most
# extreme, so p >= 2^(1 - g); six is the fewest that can reach p < ALPHA.
MIN_PAIRS = 6
SIMULATED = frozenset({"sim", "synthetic"})  # backends that run the ideal model

Pick = Callable[[TrialMetrics, VmMetrics], float]
Plan = tuple[str, int, int | None, tuple[float, ...]]


def _queue_growth(t: TrialMetrics, vm: VmMetrics) -> float:
    """What the queue gained over the trial (it starts empty), per simulated second."""
    return vm.queue_final / t.duration if t.duration > 0 else math.nan


FIGURES: tuple[tuple[str, Pick], ...] = (
    ("mean jump", lambda t, vm: vm.jump_mean),
    ("receive share", lambda t, vm: vm.share(vm.receive)),
    ("queue growth (msg/s)", _queue_growth),
)


@dataclass(frozen=True, slots=True)
class FigureComparison:
    """One per-VM figure over the real VM-trials and the simulated ones, and its test."""

    name: str
    real: Floats
    sim: Floats
    test: Shift | PairedShift

    @property
    def method(self) -> str:
        return PAIRED if isinstance(self.test, PairedShift) else UNPAIRED

    @property
    def statistic(self) -> float:
        """KS's D, or the paired test's mean difference (real - simulated)."""
        return self.test.statistic if isinstance(self.test, Shift) else self.test.mean_difference

    @property
    def differs(self) -> bool:
        return self.test.p < ALPHA

    def __str__(self) -> str:
        real, sim = mean(_known(self.real)), mean(_known(self.sim))
        return f"{self.name} {real:.3f} real vs {sim:.3f} simulated, {self.method} {self.test}"


@dataclass(frozen=True, slots=True)
class Realism:
    """Every figure compared, and how many trials the two sets share."""

    real: str  # what the real trials are: their path, say
    sim: str
    trials: tuple[int, int]  # real, simulated
    paired_trials: int  # trials of the same plan in both sets
    figures: tuple[FigureComparison, ...]

    @property
    def paired(self) -> bool:
        return self.paired_trials >= MIN_PAIRS

    @property
    def network_shows(self) -> list[str]:
        """The figures that differ: where the real network is not the ideal one."""
        return [f.name for f in self.figures if f.differs]

    def claim(self) -> Claim:
        scope = f"{self.real} ({self.trials[0]} trials) vs {self.sim} ({self.trials[1]} trials)"
        shared = (
            f"{self.paired_trials} trial(s) of the same experiment, number, seed and rates in "
            + ("both, compared VM by VM" if self.paired else "both: too few to pair")
        )
        if any(math.isnan(f.test.p) for f in self.figures):
            why = "needs two VM-trials or more on each side with every figure; " + shared
            return Claim(STATEMENT, scope, Support.UNTESTED, why)
        tests = "; ".join(str(f) for f in self.figures)
        if self.network_shows:
            evidence = f"the network shows in {', '.join(self.network_shows)}: {tests}; {shared}"
            return Claim(STATEMENT, scope, Support.CONTRADICTED, evidence)
        evidence = f"no figure differs at p < {ALPHA}: {tests}; {shared}"
        return Claim(STATEMENT, scope, Support.SUPPORTED, evidence)


def compare(
    real: Sequence[TrialMetrics],
    sim: Sequence[TrialMetrics],
    names: tuple[str, str] = ("real", "simulated"),
) -> Realism:
    """Each figure of `real`'s VM-trials against `sim`'s; `names` say what each set is."""
    simulated = {_plan(t): t for t in sim if t.seed is not None}
    pairs = [(t, simulated[_plan(t)]) for t in real if _plan(t) in simulated]
    figures = tuple(
        FigureComparison(
            name,
            _column(real, pick),
            _column(sim, pick),
            _paired(pairs, pick) if len(pairs) >= MIN_PAIRS else _unpaired(real, sim, pick),
        )
        for name, pick in FIGURES
    )
    return Realism(names[0], names[1], (len(real), len(sim)), len(pairs), figures)


def compare_backends(trials: Sequence[TrialMetrics]) -> Realism | None:
    """The trials a real backend ran against the simulated ones, when `trials` hold both (a
    trial whose manifest names no backend is neither)."""
    sim = [t for t in trials if t.backend in SIMULATED]
    real = [t for t in trials if t.backend is not None and t.backend not in SIMULATED]
    if not sim or not real:
        return None
    backends = ", ".join(sorted({t.backend for t in real if t.backend}))
    return compare(real, sim, (backends, "sim"))


def _plan(t: TrialMetrics) -> Plan:
    """What makes two trials the same plan: the seed and trial draw the rates and VM seeds."""
    return (t.experiment, t.trial, t.seed, tuple(vm.rate for vm in t.vms))


def _paired(pairs: list[tuple[TrialMetrics, TrialMetrics]], pick: Pick) -> PairedShift:
    real = np.array([pick(r, vm) for r, _ in pairs for vm in r.vms], dtype=np.float64)
    sim = np.array([pick(s, vm) for _, s in pairs for vm in s.vms], dtype=np.float64)
    trial = np.repeat(np.arange(len(pairs)), [len(r.vms) for r, _ in pairs])
    return paired_permutation(real, sim, trial)


def _unpaired(real: Sequence[TrialMetrics], sim: Sequence[TrialMetrics], pick: Pick) -> Shift:
    return kolmogorov_smirnov(_column(real, pick), _column(sim, pick))


def _column(trials: Sequence[TrialMetrics], pick: Pick) -> Floats:
    return np.array([pick(t, vm) for t in trials for vm in t.vms], dtype=np.float64)


def _known(values: Floats) -> Floats:
    return values[~np.isnan(values)]
