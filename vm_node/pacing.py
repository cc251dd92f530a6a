"""When a tick runs: at its absolute deadline, precisely, and in bursts once behind.

Ticks run in a timer callback of the event loop, not in a task: waking a task
from a timer takes a second turn of the loop, and an idle VM would pay for it
on every tick. asyncio's timers wake in whole milliseconds (epoll's
resolution), so the timer fires FINE before the deadline and the callback
sleeps the rest in one blocking nanosleep, which is precise and, unlike
spinning on the event loop, costs no CPU. The blocked stretch is never more
than a small share of the period, so a fast VM stays responsive.

A VM behind its schedule runs the missed ticks back to back, its links corked
so that their messages go out together in one write, and gives the event loop (readers,
acks) a turn at least every BURST seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

FINE = 0.0015  # seconds
FINE_SHARE = 0.02  # of the tick period
BURST = 0.001  # seconds


class Ticker:
    """Calls `tick(k, late)` at loop time origin + k * period for each k of a range.

    `late`: seconds after its deadline the tick ran. `cork(True)` comes before the
    second tick of a burst, `cork(False)` before the loop gets its turn again.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: float,
        period: float,
        tick: Callable[[int, float], None],
        cork: Callable[[bool], None],
    ) -> None:
        self._loop, self._origin, self._period = loop, origin, period
        self._tick, self._cork = tick, cork
        self._fine = min(FINE, FINE_SHARE * period)
        self._end = 0
        self._done: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None

    async def run(self, first: int, end: int) -> None:
        """Ticks first .. end - 1; cancelled, no tick runs after the cancellation."""
        self._end = end
        if first >= end:
            return
        self._schedule(first)
        try:
            await self._done
        finally:
            if self._timer is not None:
                self._timer.cancel()

    def _schedule(self, k: int) -> None:
        # A deadline already past gives a timer due at once: the readers still go first.
        self._timer = self._loop.call_at(self._deadline(k) - self._fine, self._due, k)

    def _deadline(self, k: int) -> float:
        return self._origin + k * self._period

    def _due(self, k: int) -> None:
        if self._done.done():  # cancelled in this same turn of the loop
            return
        try:
            k = self._burst(k)
        except Exception as e:  # the awaiting task fails with it
            self._done.set_exception(e)
            return
        if k >= self._end:
            self._done.set_result(None)
        else:
            self._schedule(k)

    def _burst(self, k: int) -> int:
        """Tick k, and the ticks after it that are due within BURST; returns the next k."""
        loop = self._loop
        rest = self._deadline(k) - loop.time()
        if rest > 0:
            time.sleep(rest)
        started = loop.time()
        while True:
            self._tick(k, loop.time() - self._deadline(k))
            k += 1
            now = loop.time()
            if k >= self._end or now < self._deadline(k) or now - started >= BURST:
                self._cork(False)
                return k
            self._cork(True)
