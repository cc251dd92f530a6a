"""From run directories to everything the commands print or draw, one trial at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis.check.clocks import check_trial
from analysis.check.verdict import CheckResult
from analysis.clocks import ClockError, Figures, Trace, clock_figures
from analysis.clocks.claims import TrialClocks
from analysis.columns import TrialLog
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
    clock_trial: TrialClocks | None = None  # what the clock claims read, when asked for


def analyze(
    paths: Iterable[Path],
    *,
    skew: float | None = None,
    clocks: Sequence[str] = (),
    clock_claims: bool = False,
) -> Iterator[TrialAnalysis]:
    """Load, check and measure every trial under `paths`, and run the named `clocks` on it
    (and, with `clock_claims`, read what the clock claims need: a trial whose message edges
    no clock can follow then has none); only one trial's logs are held at once."""
    for trial in load_trials(paths):
        trial_traces = traces(trial)
        trace = Trace.from_trial(trial) if clocks else _trace_if_any(trial, clock_claims)
        yield TrialAnalysis(
            check=check_trial(trial, skew=skew),
            traces=trial_traces,
            metrics=trial_metrics(trial, trial_traces),
            window=space_time_window(trial),
            offsets=trial_offsets(trial),
            clocks=clock_figures(trial, clocks, trace),
            clock_trial=_clock_trial(trial, trace) if clock_claims else None,
        )


def _clock_trial(trial: TrialLog, trace: Trace | None) -> TrialClocks | None:
    return None if trace is None else TrialClocks.of(trial, trace)


def _trace_if_any(trial: TrialLog, wanted: bool) -> Trace | None:
    if not wanted:
        return None
    try:
        return Trace.from_trial(trial)
    except ClockError:  # its check says what is wrong with its edges
        return None
