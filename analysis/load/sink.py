"""The trial's line columns, allocated once at their final size and filled block by block.

Gathering blocks and joining them at the end would hold every column twice at
the peak. The planned blocks (plan.py) know their rows, so each block's lines
are copied into place instead; rows not yet filled take no memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from analysis.load.columns import Lines

_NAMES = tuple(field.name for field in fields(Lines))


class LinesSink:
    """Room for `capacity` rows."""

    def __init__(self, capacity: int, vms: int) -> None:
        self._columns = Lines(
            file=np.empty((capacity,), np.int64),
            line=np.empty((capacity,), np.int64),
            event=np.empty((capacity,), np.int8),
            timestamp=np.empty((capacity,), np.float64),
            seq=np.empty((capacity,), np.int64),
            lamport=np.empty((capacity,), np.int64),
            queue_len=np.empty((capacity,), np.int64),
            tick=np.empty((capacity,), np.int64),
            behind=np.empty((capacity,), np.float64),
            vc=np.empty((capacity, vms), np.int64),
        )

    def place(self, lines: Lines, at: int) -> None:
        """Copy `lines` into rows at, at + 1, ..."""
        for name in _NAMES:
            getattr(self._columns, name)[at : at + len(lines)] = getattr(lines, name)

    def lines(self, spans: Sequence[tuple[int, int]]) -> Lines:
        """The rows of `spans` (at, rows), in order, moved together to the front."""
        end = 0
        for at, rows in spans:
            if at != end:  # a quarantined line left a gap: close it
                for name in _NAMES:
                    column = getattr(self._columns, name)
                    column[end : end + rows] = column[at : at + rows].copy()
            end += rows
        return Lines(*(getattr(self._columns, name)[:end] for name in _NAMES))
