"""The clock-offset estimator: the shortest round trip's read, its midpoint, half its width."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.clock_offset import measure_offset


def fake_clocks(offset: float, trips: list[float]) -> tuple[object, object]:
    """Our clock, and a remote read `offset` ahead taken at a point in each trip."""
    now = [100.0]
    trip = iter(trips)
    position = itertools.cycle([0.9, 0.1, 0.5])  # where in the trip the remote read lands

    def clock() -> float:
        return now[0]

    def read_remote() -> float:
        width = next(trip)
        at = now[0] + width * next(position)
        now[0] += width
        return at + offset

    return clock, read_remote


def test_the_read_with_the_shortest_round_trip_is_kept_and_bounds_the_offset() -> None:
    clock, read_remote = fake_clocks(0.25, [0.020, 0.004, 0.010, 0.030])
    reading = measure_offset(read_remote, clock, reads=4)  # type: ignore[arg-type]
    assert reading.uncertainty == pytest.approx(0.002)
    assert abs(reading.offset - 0.25) <= reading.uncertainty + 1e-12
    assert reading.offset == pytest.approx(0.25 + 0.004 * (0.1 - 0.5))


def test_reads_while_our_clock_steps_back_are_skipped() -> None:
    times = iter([10.0, 9.0, 20.0, 20.002])  # the first read's clock goes backwards

    reading = measure_offset(lambda: 25.0, lambda: next(times), reads=2)
    assert (reading.offset, reading.uncertainty) == pytest.approx((4.999, 0.001))


def test_a_remote_read_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time"):
        measure_offset(lambda: float("nan"), lambda: 1.0)


def test_reads_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        measure_offset(lambda: 1.0, lambda: 1.0, reads=0)
