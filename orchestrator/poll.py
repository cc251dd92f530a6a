"""The one way clocklab waits: check a condition until it holds or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_INTERVAL = 0.1  # seconds between checks


def poll(
    check: Callable[[], bool],
    timeout: float,
    interval: float = DEFAULT_INTERVAL,
    *,
    wake: Callable[[], float | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once `check()` holds, False when `timeout` seconds passed first.

    `check` runs at least once; what it raises ends the wait. `wake` may name a
    wall-clock moment (time.time()) to check sooner than `interval`, such as a
    fault that is due.
    """
    deadline = clock() + timeout
    while not check():
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        pause = min(interval, remaining)
        due = wake() if wake is not None else None
        if due is not None:
            pause = min(pause, max(due - time.time(), 0.0))
        sleep(pause)
    return True
