"""From run directories to everything the commands print or draw, one trial at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from analysis.check import check_trial
from analysis.load import load_trials
from analysis.metrics import TrialMetrics, trial_metrics
from analysis.series import TrialTraces, traces
from analysis.spacetime import SpaceTimeWindow, space_time_window
from analysis.verdict import CheckResult


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
