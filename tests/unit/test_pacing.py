"""The Ticker: every tick once, in order, never before its deadline; bursts when behind."""

import asyncio

import pytest

from vm_node.pacing import BURST, FINE, Ticker


class Recorder:
    def __init__(self, loop: asyncio.AbstractEventLoop, origin: float, period: float) -> None:
        self.loop, self.origin, self.period = loop, origin, period
        self.ticks: list[int] = []
        self.early: list[float] = []  # seconds a tick ran before its deadline, if it did
        self.calls: list[object] = []  # ticks and cork() calls, in order

    def tick(self, k: int, late: float) -> None:
        deadline = self.origin + k * self.period
        if self.loop.time() < deadline:
            self.early.append(deadline - self.loop.time())
        assert late <= self.loop.time() - deadline  # measured as the tick began
        self.ticks.append(k)
        self.calls.append(k)

    def cork(self, corked: bool) -> None:
        self.calls.append(corked)


def test_each_tick_runs_once_in_order_and_never_before_its_deadline() -> None:
    async def main() -> Recorder:
        loop = asyncio.get_running_loop()
        # A period long enough that the timer fires the whole FINE early (whole ms)
        rec = Recorder(loop, loop.time() + 0.01, 0.08)
        await Ticker(loop, rec.origin, rec.period, rec.tick, rec.cork).run(0, 8)
        return rec

    rec = asyncio.run(main())
    assert rec.ticks == list(range(8))
    assert rec.early == []


def test_a_ticker_behind_runs_the_missed_ticks_in_bursts_that_cork_their_messages() -> None:
    async def main() -> Recorder:
        loop = asyncio.get_running_loop()
        rec = Recorder(loop, loop.time() - 1.0, 1e-6)  # a million ticks a second, a second late
        await Ticker(loop, rec.origin, rec.period, rec.tick, rec.cork).run(0, 20_000)
        return rec

    rec = asyncio.run(main())
    assert rec.ticks == list(range(20_000))
    # corked from the second tick of a burst, uncorked before the loop gets its turn
    assert rec.calls[:3] == [0, True, 1]
    assert rec.calls[-1] is False
    corks = [c for c in rec.calls if isinstance(c, bool)]
    assert corks.count(False) > 1, f"one burst of 20,000 ticks: none yielded within {BURST} s"


def test_a_ticker_cancelled_as_its_timer_fires_runs_no_tick_after_the_cancellation() -> None:
    async def main() -> Recorder:
        loop = asyncio.get_running_loop()
        rec = Recorder(loop, loop.time() + 0.01, 0.08)  # FINE before each deadline: the timer
        ticker = Ticker(loop, rec.origin, rec.period, rec.tick, rec.cork)
        task = asyncio.create_task(ticker.run(0, 10))
        # due in the same turn of the loop as tick 2's timer, just before it
        loop.call_at(rec.origin + 2 * rec.period - FINE - 1e-6, task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        return rec

    assert asyncio.run(main()).ticks == [0, 1]


def test_a_failing_tick_fails_the_run() -> None:
    def tick(k: int, late: float) -> None:
        if k == 2:
            raise ValueError("tick 2")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await Ticker(loop, loop.time(), 0.001, tick, lambda corked: None).run(0, 10)

    with pytest.raises(ValueError, match="tick 2"):
        asyncio.run(main())
