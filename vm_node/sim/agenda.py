"""The virtual clock and every event still to come, in time order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TypeAlias

# What an event is. At one instant they run in this order: what arrived is on the
# inbox before a tick looks at it, and a fault comes after the tick due then.
ARRIVAL, GARBLED, LINK_DOWN, LINK_UP, TICK, FAULT_BEGIN, FAULT_END = range(7)

# (time, what, serial, vm, payload): the serial breaks ties in the order events were
# pushed, so the heap never compares two payloads and every run pops the same order.
Event: TypeAlias = tuple[float, int, int, int, object]


class Agenda:
    """The events to come; `now` is the time of the last one taken."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._events: list[Event] = []
        self._serial = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._events)

    def push(self, at: float, what: int, vm: int, payload: object) -> None:
        heapq.heappush(self._events, (at, what, next(self._serial), vm, payload))

    def pop(self) -> tuple[int, int, object]:
        """The next event (what, vm, payload); the clock moves to its time."""
        self.now, what, _, vm, payload = heapq.heappop(self._events)
        return what, vm, payload

    def take(self, match: Callable[[Event], bool]) -> list[Event]:
        """Remove the events `match` picks and return them."""
        taken = [e for e in self._events if match(e)]
        if taken:
            self._events[:] = [e for e in self._events if not match(e)]
            heapq.heapify(self._events)
        return taken
