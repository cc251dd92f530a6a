"""Choosing what the figures show: the data behind each `plot_x`, built from analyses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from analysis.clocks.claims import TrialClocks
from analysis.columns import Floats, Ints
from analysis.metrics.queueing import critical_ratio
from analysis.metrics.summaries import ExperimentSummary
from analysis.metrics.sweep import VmRow
from analysis.metrics.traces import TrialTraces
from analysis.metrics.trial import TrialMetrics, VmMetrics
from analysis.report.plots import (
    ClockComparison,
    ClockPoints,
    JumpsByRate,
    ModelFit,
    PhaseDiagram,
    RateEffect,
    VmZoom,
)

MAX_RATE_GROUPS = 8
RATIO_BINS = 10  # columns of the phase diagram over slowest / fastest in (0, 1]


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


def model_fits(summaries: Sequence[ExperimentSummary]) -> list[ModelFit]:
    """Receive share and queue growth, as the model predicts them and as they were measured."""
    return [
        ModelFit(label, tuple((s.name, *_model_points(s.trials, pick)) for s in summaries))
        for label, pick in (("receive share", _receive_share), ("queue growth (msg/s)", _growth))
    ]


def _receive_share(m: TrialMetrics, vm: VmMetrics) -> tuple[float, float]:
    model = m.predicted(vm.vm)
    return (model.receive_share if model else np.nan), vm.share(vm.receive)


def _growth(m: TrialMetrics, vm: VmMetrics) -> tuple[float, float]:
    """Measured: what the queue gained over the trial (it starts empty), per second."""
    model = m.predicted(vm.vm)
    gained = vm.queue_final / m.duration if m.duration > 0 else np.nan
    return (model.queue_growth if model else np.nan), gained


def _model_points(
    trials: Sequence[TrialMetrics], pick: Callable[[TrialMetrics, VmMetrics], tuple[float, float]]
) -> tuple[Floats, Floats]:
    pairs = np.array([pick(m, vm) for m in trials for vm in m.vms], dtype=np.float64)
    pairs = pairs.reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def phase_diagram(rows: Sequence[VmRow]) -> PhaseDiagram:
    """Share of growing queues per (slowest / fastest bin, event range); the model's boundary
    for one slow VM among fast ones (it grows first) and one fast VM among slow ones."""
    event_ranges = tuple(sorted({r.event_range for r in rows}))
    grown = np.zeros((len(event_ranges), RATIO_BINS))
    counted = np.zeros((len(event_ranges), RATIO_BINS))
    for r in rows:
        column = min(RATIO_BINS - 1, int(r.slowest_over_fastest * RATIO_BINS))
        row = event_ranges.index(r.event_range)
        grown[row, column] += r.queue_grows
        counted[row, column] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(counted > 0, grown / np.maximum(counted, 1), np.nan)
    vms = max((r.vms for r in rows), key=[r.vms for r in rows].count, default=3)
    boundaries = tuple(
        (label, tuple(critical_ratio(e, vms, slow) for e in event_ranges))
        for label, slow in (
            ("model: one slow VM among fast ones", 1),
            ("model: one fast VM among slow ones", vms - 1),
        )
    )
    return PhaseDiagram(event_ranges, share, boundaries, vms)


def sweep_fits(rows: Sequence[VmRow]) -> list[ModelFit]:
    """Receive share and queue growth over every VM-trial of a sweep, predicted and measured."""

    def points(predicted: list[float], measured: list[float]) -> tuple[str, Floats, Floats]:
        return ("sweep", np.array(predicted), np.array(measured))

    return [
        ModelFit(
            "receive share",
            (points([r.predicted_receive_share for r in rows], [r.receive_share for r in rows]),),
        ),
        ModelFit(
            "queue growth (msg/s)",
            (points([r.predicted_queue_growth for r in rows], [r.queue_growth for r in rows]),),
        ),
    ]


def clock_comparison(trials: Sequence[TrialClocks]) -> ClockComparison:
    """Every trial's clocks, by experiment in the order they first appear."""
    experiments = []
    for name in dict.fromkeys(t.experiment for t in trials):
        mine = [t for t in trials if t.experiment == name]

        def per_vm(attr: str, mine: list[TrialClocks] = mine) -> Floats:
            return np.array([v for t in mine for v in getattr(t, attr)], dtype=np.float64)

        experiments.append(
            ClockPoints(
                name=name,
                ratio=per_vm("rate_ratio"),
                lamport_lead=per_vm("lamport_lead"),
                hlc_lead=per_vm("hlc_lead"),
                bloom_fp=per_vm("bloom_fp"),
                counter=np.array([np.nanmax(t.hlc_c) for t in mine], dtype=np.float64),
                bound=np.array([t.counter_bound or np.nan for t in mine], dtype=np.float64),
            )
        )
    known = [t.epsilon.seconds for t in trials if t.epsilon is not None]
    return ClockComparison(tuple(experiments), max(known) if known else float("nan"))
