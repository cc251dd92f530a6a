"""The trial's line columns, allocated once at their final size and filled block by block.

Gathering blocks and joining them at the end would hold every column twice at
the peak. The planned blocks (plan.py) know their rows, so each block's lines
are copied into place instead. The memory is shared (an anonymous mmap), so
that a forked reader fills it as well as this process; the reader then lets
go of the pages it filled (`release`), which stay this process's.
"""

from __future__ import annotations

import mmap
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.load.columns import Lines

_NAMES = tuple(field.name for field in fields(Lines))
# Where MADV_DONTNEED is known to leave a shared mapping's data to the processes still mapping it.
_CAN_RELEASE = sys.platform == "linux"


class LinesSink:
    """Room for `capacity` rows in memory shared with forked readers."""

    def __init__(self, capacity: int, vms: int) -> None:
        self._buffers: list[tuple[mmap.mmap, int]] = []  # each column's memory, bytes a row
        self._columns = Lines(
            file=self._shared((capacity,), np.int64),
            line=self._shared((capacity,), np.int64),
            event=self._shared((capacity,), np.int8),
            timestamp=self._shared((capacity,), np.float64),
            seq=self._shared((capacity,), np.int64),
            lamport=self._shared((capacity,), np.int64),
            queue_len=self._shared((capacity,), np.int64),
            tick=self._shared((capacity,), np.int64),
            behind=self._shared((capacity,), np.float64),
            vc=self._shared((capacity, vms), np.int64),
        )

    def _shared(self, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
        size = int(np.prod(shape))
        row = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
        buffer = mmap.mmap(-1, max(size * np.dtype(dtype).itemsize, 1))  # MAP_SHARED
        self._buffers.append((buffer, row))
        return np.frombuffer(buffer, dtype=dtype, count=size).reshape(shape)

    def place(self, lines: Lines, at: int) -> None:
        """Copy `lines` into rows at, at + 1, ..."""
        for name in _NAMES:
            getattr(self._columns, name)[at : at + len(lines)] = getattr(lines, name)

    def release(self, at: int) -> None:
        """Unmap the whole pages of rows at, at + 1, ... to the end from this process; the
        data stays in the shared memory, for the processes that still map it."""
        if not _CAN_RELEASE:
            return
        for buffer, row in self._buffers:
            start = -(-at * row // mmap.PAGESIZE) * mmap.PAGESIZE  # rounded up
            if len(buffer) > start:
                buffer.madvise(mmap.MADV_DONTNEED, start, len(buffer) - start)

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
