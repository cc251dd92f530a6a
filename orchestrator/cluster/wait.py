"""Wait with a deadline, never a bare sleep: until a check gives a value, or time is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """The first value of `check()` that is not None, or None once `timeout` s have passed."""
    deadline = clock() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if clock() >= deadline:
            return None
        sleep(interval)
