"""Clock algorithms run on a recorded trial, one module each, by name.

Every clock's `figures(trial, trace)` gives its columns for `clocklab analyze --clocks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from analysis.clocks import bloom, hlc, lamport, vector
from analysis.clocks.figures import Figures
from analysis.clocks.trace import ClockError, Mismatch, Trace
from analysis.columns import TrialLog

ClockFigures: TypeAlias = Callable[[TrialLog, Trace], Figures]

CLOCKS: dict[str, ClockFigures] = {
    "lamport": lamport.figures,
    "vector": vector.figures,
    "hlc": hlc.figures,
    "bloom": bloom.figures,
}


def clock_figures(
    trial: TrialLog, names: Sequence[str], trace: Trace | None = None
) -> dict[str, Figures]:
    """The named clocks' figures for one trial, in the order asked."""
    unknown = [n for n in names if n not in CLOCKS]
    if unknown:
        raise ClockError(f"unknown clock {unknown[0]!r}: choose from {', '.join(CLOCKS)}")
    if not names:
        return {}
    trace = Trace.from_trial(trial) if trace is None else trace
    return {name: CLOCKS[name](trial, trace) for name in names}


__all__ = [
    "CLOCKS",
    "ClockError",
    "ClockFigures",
    "Figures",
    "Mismatch",
    "Trace",
    "clock_figures",
]
