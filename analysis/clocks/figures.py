"""What one clock says about a trial: named columns with one figure per VM."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np

from analysis.clocks.trace import Trace
from analysis.columns import Floats

Reduction: TypeAlias = Literal["max", "sum"]


@dataclass(frozen=True, slots=True)
class Figures:
    """Column name -> one value per VM (nan where a VM has no event)."""

    columns: dict[str, tuple[float, ...]]

    @classmethod
    def per_vm(
        cls, trace: Trace, values: Mapping[str, Floats], how: Mapping[str, Reduction]
    ) -> Figures:
        """Reduce per-event values to one figure per VM."""
        columns = {}
        for name, column in values.items():
            reduce = np.max if how[name] == "max" else np.sum
            columns[name] = tuple(
                float(reduce(column[s])) if s.stop > s.start else float("nan")
                for s in trace.vm_slices()
            )
        return cls(columns)
