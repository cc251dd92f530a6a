"""Real sockets against the ideal model: a real backend's trials beside the simulator's.

The simulator (vm_node/sim/) runs the VMs' own cores with a fixed delay on the
wire and no scheduler, so run on the same experiment and seeds it is what the
trials would do over an ideal network. Each per-VM figure below is compared
between the two sets of VM-trials with a two-sample Kolmogorov-Smirnov test;
those that differ (p < 0.05) are where the network shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.columns import Floats
from analysis.metrics.claims import ALPHA, Claim, Support
from analysis.metrics.stats import Shift, kolmogorov_smirnov, mean
from analysis.metrics.trial import TrialMetrics, VmMetrics

STATEMENT = "Real sockets behave like the ideal model (the simulator on the same seeds)"


def _queue_growth(t: TrialMetrics, vm: VmMetrics) -> float:
    """What the queue gained over the trial (it starts empty), per simulated second."""
    return vm.queue_final / t.duration if t.duration > 0 else math.nan


FIGURES: tuple[tuple[str, Callable[[TrialMetrics, VmMetrics], float]], ...] = (
    ("mean jump", lambda t, vm: vm.jump_mean),
    ("receive share", lambda t, vm: vm.share(vm.receive)),
    ("queue growth (msg/s)", _queue_growth),
)


@dataclass(frozen=True, slots=True)
class FigureComparison:
    """One per-VM figure over the real VM-trials and the simulated ones."""

    name: str
    real: Floats
    sim: Floats
    test: Shift

    @classmethod
    def of(cls, name: str, real: Floats, sim: Floats) -> FigureComparison:
        return cls(name, real, sim, kolmogorov_smirnov(real, sim))

    @property
    def differs(self) -> bool:
        return self.test.p < ALPHA

    def __str__(self) -> str:
        real, sim = mean(_known(self.real)), mean(_known(self.sim))
        return f"{self.name} {real:.3f} real vs {sim:.3f} simulated, {self.test}"


@dataclass(frozen=True, slots=True)
class Realism:
    """Every figure compared, and how many trials the two sets share."""

    real: str  # what the real trials are: their path, say
    sim: str
    trials: tuple[int, int]  # real, simulated
    shared_trials: int  # trials of the same experiment and number in both sets
    figures: tuple[FigureComparison, ...]

    @property
    def network_shows(self) -> list[str]:
        """The figures that differ: where the real network is not the ideal one."""
        return [f.name for f in self.figures if f.differs]

    def claim(self) -> Claim:
        scope = f"{self.real} ({self.trials[0]} trials) vs {self.sim} ({self.trials[1]} trials)"
        shared = f"{self.shared_trials} trial(s) of the same experiment and number in both"
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
    figures = tuple(
        FigureComparison.of(name, _column(real, pick), _column(sim, pick)) for name, pick in FIGURES
    )
    keys = {(t.experiment, t.trial) for t in sim}
    return Realism(
        real=names[0],
        sim=names[1],
        trials=(len(real), len(sim)),
        shared_trials=sum((t.experiment, t.trial) in keys for t in real),
        figures=figures,
    )


def _column(
    trials: Sequence[TrialMetrics], pick: Callable[[TrialMetrics, VmMetrics], float]
) -> Floats:
    return np.array([pick(t, vm) for t in trials for vm in t.vms], dtype=np.float64)


def _known(values: Floats) -> Floats:
    return values[~np.isnan(values)]
