"""Clock algorithms run on a recorded trial, one module each, by name.

Every clock's `figures(trial, trace)` gives its columns for `clocklab analyze --clocks`.
"""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = ["CLOCKS", "ClockError", "ClockFigures", "Figures", "Mismatch", "Trace"]
