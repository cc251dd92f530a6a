"""When a tick runs: at its absolute deadline, precisely, and in bursts once behind.

asyncio's timers wake in whole milliseconds (epoll's resolution), so a tick
waits on them until FINE before its deadline and sleeps the rest in one
blocking nanosleep: precise to a tenth of a millisecond, and free of CPU where
spinning on the event loop cost more than the ticks. The blocked stretch is
never more than a small share of the period, so a fast VM stays responsive.

A VM behind its schedule runs the missed ticks back to back, yielding to the
event loop (readers, acks) at least every BURST seconds.
"""

from __future__ import annotations

import asyncio
import time

FINE = 0.0015  # seconds
FINE_SHARE = 0.02  # of the tick period
BURST = 0.001  # seconds


class Pacer:
    def __init__(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        self._loop = loop
        self._fine = min(FINE, FINE_SHARE * period)
        self._yielded = loop.time()  # when the event loop last had a turn

    def in_burst(self, deadline: float) -> bool:
        """Whether the tick due at `deadline` (loop time) runs at once, without yielding."""
        now = self._loop.time()
        return now >= deadline and now - self._yielded < BURST

    async def wait(self, deadline: float) -> None:
        """Until `deadline`: asleep in the event loop, then the last stretch blocked."""
        loop = self._loop
        delay = deadline - loop.time()
        await asyncio.sleep(delay - self._fine if delay > self._fine else 0.0)  # 0: readers
        rest = deadline - loop.time()
        if rest > 0:
            time.sleep(rest)
        self._yielded = loop.time()
