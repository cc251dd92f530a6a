"""The trial's line columns, allocated once at their final size and filled block by block.

Gathering blocks and joining them at the end would hold every column twice at
the peak. The planned blocks (plan.py) know their rows, so each block's lines
are copied into place instead. The memory is shared (an anonymous mmap), so
that a forked reader fills it as well as this process.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.load.columns import Lines

_NAMES = tuple(field.name for field in fields(Lines))


def _shared(shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
    size = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(size, 1) * np.dtype(dtype).itemsize)  # MAP_SHARED: seen across fork
    return np.frombuffer(buffer, dtype=dtype, count=size).reshape(shape)


class LinesSink:
    """Room for `capacity` rows in memory shared with forked readers."""

    def __init__(self, capacity: int, vms: int) -> None:
        self._columns = Lines(
            file=_shared((capacity,), np.int64),
            line=_shared((capacity,), np.int64),
            event=_shared((capacity,), np.int8),
            timestamp=_shared((capacity,), np.float64),
            seq=_shared((capacity,), np.int64),
            lamport=_shared((capacity,), np.int64),
            queue_len=_shared((capacity,), np.int64),
            tick=_shared((capacity,), np.int64),
            behind=_shared((capacity,), np.float64),
            vc=_shared((capacity, vms), np.int64),
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
