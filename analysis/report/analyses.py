"""From run directories to everything the commands print or draw, one trial at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from analysis.check.clocks import check_trial
from analysis.check.verdict import CheckResult
from analysis.load.runs import load_trials
from analysis.metrics.traces import TrialTraces, traces
from analysis.metrics.trial import TrialMetrics, trial_metrics
from analysis.report.space_time import SpaceTimeWindow, space_time_window


@dataclass(frozen=True, slots=True)
class TrialAnalysis:
    check: CheckResult
    traces: TrialTraces
    metrics: TrialMetrics
    window: SpaceTimeWindow


def analyze(paths: Iterable[Path], *, skew: float = 0.0) -> Iterator[TrialAnalysis]:
    """Load, check and measure every trial under `paths`; only one trial's logs are held at once."""
    for trial in load_trials(paths):
        trial_traces = traces(trial)
        yield TrialAnalysis(
            check=check_trial(trial, skew=skew),
            traces=trial_traces,
            metrics=trial_metrics(trial, trial_traces),
            window=space_time_window(trial),
        )
