"""Choosing what the figures show: the data behind each `plot_x`, built from analyses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from analysis.load.columns import Ints
from analysis.metrics.summaries import ExperimentSummary
from analysis.metrics.traces import TrialTraces
from analysis.report.plots import JumpsByRate, RateEffect, VmZoom

MAX_RATE_GROUPS = 8


def zoom(traces: TrialTraces, ticks: int = 40) -> VmZoom:
    """The slowest VM around its largest jump: where the clock visibly leaps."""
    slowest = min(traces.vms, key=lambda t: (t.rate, t.vm))
    steps = np.diff(slowest.lamport)
    centre = int(np.argmax(steps)) + 1 if len(steps) else 0
    start = max(0, min(centre - ticks // 2, len(slowest.lamport) - ticks))
    end = min(start + ticks, len(slowest.lamport))
    return VmZoom(traces.name, slowest, start, end, traces.faults)


def jumps_by_rate(name: str, trials: Sequence[TrialTraces]) -> JumpsByRate:
    """Every receive's jump, pooled by the configured rate of the VM that made it."""
    rates = {t.rate for trial in trials for t in trial.vms}
    coarse = len(rates) > MAX_RATE_GROUPS  # many distinct rates: pool them by integer
    pooled: defaultdict[float, list[Ints]] = defaultdict(list)
    for trial in trials:
        for t in trial.vms:
            pooled[float(round(t.rate)) if coarse else t.rate].append(t.jumps)
    return JumpsByRate(name, tuple((rate, np.concatenate(pooled[rate])) for rate in sorted(pooled)))


def rate_effects(summaries: Sequence[ExperimentSummary]) -> list[RateEffect]:
    """Mean jump, mean queue and mean lag against rate, for every experiment."""
    return [
        RateEffect(label, tuple((s.name, s.column("rate"), s.column(attr)) for s in summaries))
        for label, attr in (
            ("mean jump on receive", "jump_mean"),
            ("mean queue length", "queue_mean"),
            ("mean lag behind the fastest VM", "lag_mean"),
        )
    ]
