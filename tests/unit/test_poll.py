"""The one wait: a condition checked until it holds or its deadline passes."""

from __future__ import annotations

import pytest

from orchestrator.poll import poll


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_it_returns_true_as_soon_as_the_condition_holds() -> None:
    time = FakeTime()
    answers = iter([False, False, True])
    assert poll(lambda: next(answers), 10, 0.5, clock=time.clock, sleep=time.sleep)
    assert time.sleeps == [0.5, 0.5]


def test_it_returns_false_once_the_timeout_passed_without_oversleeping() -> None:
    time = FakeTime()
    assert not poll(lambda: False, 1.2, 0.5, clock=time.clock, sleep=time.sleep)
    assert time.now == pytest.approx(1.2)


def test_what_the_check_raises_ends_the_wait() -> None:
    def broken() -> bool:
        raise RuntimeError("vm1 exited")

    with pytest.raises(RuntimeError, match="vm1 exited"):
        poll(broken, 10)
