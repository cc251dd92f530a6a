"""A clock's offset from ours: read it a few times, keep the read with the shortest round trip.

The remote clock was read somewhere between our `t0` and `t1`, so
`offset = remote - (t0 + t1) / 2` is off by at most `(t1 - t0) / 2`: that is
the uncertainty. The shortest round trip is the read least disturbed by a busy
machine. Pure: our clock and the remote read are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

READS = 8  # a pipe's round trip each: a few milliseconds in all


@dataclass(frozen=True, slots=True)
class OffsetReading:
    offset: float  # seconds the remote clock is ahead of ours
    uncertainty: float  # half the round trip of the read kept
    at: float  # our clock at the middle of that read


def measure_offset(
    read_remote: Callable[[], float], clock: Callable[[], float], reads: int = READS
) -> OffsetReading:
    """The offset of the clock `read_remote` reads, from `reads` reads around `clock`."""
    if reads < 1:
        raise ValueError(f"reads={reads!r}: must be at least 1")
    best: OffsetReading | None = None
    for _ in range(reads):
        t0 = clock()
        remote = read_remote()
        t1 = clock()
        if not math.isfinite(remote):
            raise ValueError(f"the remote clock read {remote!r}, not a time")
        if t1 < t0:  # our clock stepped back mid-read: this read bounds nothing
            continue
        middle = (t0 + t1) / 2
        reading = OffsetReading(remote - middle, (t1 - t0) / 2, middle)
        if best is None or reading.uncertainty < best.uncertainty:
            best = reading
    if best is None:
        raise ValueError(f"our clock stepped back during each of {reads} reads")
    return best
