"""Keeps Ctrl-C, SIGTERM and a closed terminal from cutting a teardown short."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Within the block, SIGINT/SIGTERM/SIGHUP are noted, not raised: removing what a trial
    started must finish, or it would leave containers behind. Yields what arrived."""
    if threading.current_thread() is not threading.main_thread():
        yield []  # only the main thread handles signals
        return
    arrived: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield arrived
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
