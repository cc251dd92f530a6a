"""The trial's line columns, allocated once at their final size and filled block by block.

Gathering blocks and joining them at the end would hold every column twice at
the peak; the files' line count is known before reading (a count of newlines,
cheap beside decoding), so each block is copied into its place instead.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from analysis.load.columns import Lines
from analysis.load.part import Part

_BLOCK_BYTES = 1 << 20


def count_lines(path: Path) -> int:
    """Lines of a file as read_file numbers them: a last line without a newline counts."""
    count = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(_BLOCK_BYTES):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class LinesSink:
    """Room for `capacity` rows; `place` copies a part's lines in, in reading order."""

    def __init__(self, capacity: int, vms: int) -> None:
        self._columns = Lines(
            file=np.empty(capacity, dtype=np.int64),
            line=np.empty(capacity, dtype=np.int64),
            event=np.empty(capacity, dtype=np.int8),
            timestamp=np.empty(capacity, dtype=np.float64),
            seq=np.empty(capacity, dtype=np.int64),
            lamport=np.empty(capacity, dtype=np.int64),
            queue_len=np.empty(capacity, dtype=np.int64),
            tick=np.empty(capacity, dtype=np.int64),
            behind=np.empty(capacity, dtype=np.float64),
            vc=np.empty((capacity, vms), dtype=np.int64),
        )
        self._end = 0

    def place(self, part: Part) -> Part:
        """Copy the part's lines into the sink; the part keeps views of its rows there."""
        start, end = self._end, self._end + len(part.lines)
        for field in fields(Lines):
            getattr(self._columns, field.name)[start:end] = getattr(part.lines, field.name)
        self._end = end
        return replace(part, lines=self._rows(start, end))

    def lines(self) -> Lines:
        """Every row placed so far."""
        return self._rows(0, self._end)

    def _rows(self, start: int, end: int) -> Lines:
        return Lines(*(getattr(self._columns, field.name)[start:end] for field in fields(Lines)))
