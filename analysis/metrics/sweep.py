"""A sweep's VM-trials, each measured beside the queueing model's prediction, and how well
the model did over them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from analysis.columns import TrialLog
from analysis.load.runs import find_runs, load_trial
from analysis.metrics.claims import CLEAR_LOAD
from analysis.metrics.traces import traces
from analysis.metrics.trial import TrialMetrics, trial_metrics


@dataclass(frozen=True, slots=True)
class VmRow:
    """One VM of one trial of a sweep, as measured and as predicted."""

    cell: str
    trial: int
    vm: int
    vms: int
    event_range: int
    rate: float
    slowest_over_fastest: float  # of the trial's configured rates
    ticks: int
    rate_error: float  # achieved / configured - 1
    tick_jitter: float  # real seconds: spread of tick times about their fitted line
    receive_share: float
    predicted_receive_share: float
    arrival_rate: float  # predicted lambda, messages per simulated second
    load: float  # predicted lambda / mu
    queue_growth: float  # measured: final queue over the duration, per simulated second
    predicted_queue_growth: float
    queue_grows: bool  # measured: metrics' unbounded-queue test
    predicted_queue_grows: bool


def vm_rows(trial: TrialLog) -> list[VmRow]:
    """The rows of one trial (none when the model has nothing to go on)."""
    m = trial_metrics(trial, traces(trial))
    event_range = next((f.config.event_range for f in trial.files if f.config), None)
    if not m.predictions or event_range is None:
        return []
    rates = [vm.rate for vm in m.vms]
    ratio = min(rates) / max(rates)
    return [_row(m, i, event_range, ratio) for i in range(len(m.vms))]


def _row(m: TrialMetrics, i: int, event_range: int, ratio: float) -> VmRow:
    vm, model = m.vms[i], m.predictions[i]
    return VmRow(
        cell=m.experiment,
        trial=m.trial,
        vm=vm.vm,
        vms=len(m.vms),
        event_range=event_range,
        rate=vm.rate,
        slowest_over_fastest=ratio,
        ticks=vm.ticks,
        rate_error=vm.achieved / vm.rate - 1,
        tick_jitter=vm.tick_jitter,
        receive_share=vm.share(vm.receive),
        predicted_receive_share=model.receive_share,
        arrival_rate=model.arrival_rate,
        load=model.load,
        queue_growth=vm.queue_final / m.duration if m.duration > 0 else math.nan,
        predicted_queue_growth=model.queue_growth,
        queue_grows=vm.queue_unbounded,
        predicted_queue_grows=model.queue_grows,
    )


@dataclass(frozen=True, slots=True)
class SweepScores:
    """How well the model did over a sweep's VM-trials."""

    vm_trials: int
    share_error: float  # mean |predicted - measured| receive share
    clear: int  # VM-trials with |lambda / mu - 1| >= CLEAR_LOAD
    clear_right: int  # of those, growth classified right
    all_right: int

    def to_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def scores(rows: Sequence[VmRow]) -> SweepScores:
    clear = [r for r in rows if abs(r.load - 1) >= CLEAR_LOAD]
    errors = [abs(r.predicted_receive_share - r.receive_share) for r in rows]
    return SweepScores(
        vm_trials=len(rows),
        share_error=float(np.mean(errors)) if errors else math.nan,
        clear=len(clear),
        clear_right=sum(r.queue_grows == r.predicted_queue_grows for r in clear),
        all_right=sum(r.queue_grows == r.predicted_queue_grows for r in rows),
    )


def sweep_rows(trials: Iterable[TrialLog]) -> list[VmRow]:
    """The rows of every completed trial among `trials`."""
    return [row for trial in trials if trial.manifest.completed for row in vm_rows(trial)]


def rows_under(trials_root: Path, known: Mapping[Path, list[VmRow]] | None = None) -> list[VmRow]:
    """The rows of every completed trial under `trials_root`, in the order they are found.
    `known`: the rows of trials already loaded (by resolved run directory), not loaded
    again."""
    known = known or {}
    rows: list[VmRow] = []
    for run_dir in find_runs([trials_root]):
        if (given := known.get(run_dir.resolve())) is not None:
            rows += given
        else:
            rows += sweep_rows([load_trial(run_dir)])
    return rows
