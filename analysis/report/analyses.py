"""From run directories to everything the commands print or draw, one trial at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis.check.clocks import check_trial
from analysis.check.verdict import CheckResult
from analysis.clocks import Figures, clock_figures
from analysis.load.runs import load_trials
from analysis.metrics.traces import TrialTraces, traces
from analysis.metrics.trial import TrialMetrics, trial_metrics
from analysis.offsets import TrialOffsets, trial_offsets
from analysis.report.space_time import SpaceTimeWindow, space_time_window


@dataclass(frozen=True, slots=True)
class TrialAnalysis:
    check: CheckResult
    traces: TrialTraces
    metrics: TrialMetrics
    window: SpaceTimeWindow
    offsets: TrialOffsets
    clocks: dict[str, Figures] = field(default_factory=dict)  # by clock name, when asked for


def analyze(
    paths: Iterable[Path], *, skew: float | None = None, clocks: Sequence[str] = ()
) -> Iterator[TrialAnalysis]:
    """Load, check and measure every trial under `paths`, and run the named `clocks` on it;
    only one trial's logs are held at once."""
    for trial in load_trials(paths):
        trial_traces = traces(trial)
        yield TrialAnalysis(
            check=check_trial(trial, skew=skew),
            traces=trial_traces,
            metrics=trial_metrics(trial, trial_traces),
            window=space_time_window(trial),
            offsets=trial_offsets(trial),
            clocks=clock_figures(trial, clocks),
        )
