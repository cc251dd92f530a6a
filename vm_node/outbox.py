"""A VM's outgoing messages: encoded, and handed to the peer links now or after a delay.

The VM's core (vm_node.core) says when each copy of a message goes out, as
the link conditions drew it. Delayed copies wait on timers; at the end, what
is still held is reported undelivered, like a send that failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from vm_node.peerlink import PeerLink
from vm_node.vocabulary import VectorClock
from vm_node.wire import Codec


class OutboxEvents(Protocol):
    def on_send_failed(self, to: int, msg_id: str, reason: str) -> None: ...


class Outbox:
    def __init__(
        self,
        links: Mapping[int, PeerLink],
        codec: Codec,
        time_scale: float,
        events: OutboxEvents,
    ) -> None:
        self._links = links
        self._codec = codec
        self._time_scale = time_scale
        self._events = events
        # Copies held back by a delay: (timer, to, msg_id) by a serial number.
        self._held: dict[int, tuple[asyncio.TimerHandle, int, str]] = {}
        self._serial = 0
        self._released = asyncio.Event()  # the last held copy went out

    def send(
        self, to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
    ) -> None:
        """Hand one message to its link: a copy after each delay (simulated seconds)."""
        line = self._codec.message(to, msg_id, lamport, vc)
        for delay in delays:
            if delay <= 0:
                self._deliver(to, line, msg_id)
                continue
            self._serial += 1
            loop = asyncio.get_running_loop()
            timer = loop.call_later(delay / self._time_scale, self._release, self._serial, line)
            self._held[self._serial] = (timer, to, msg_id)

    async def drained(self) -> None:
        """Wait until nothing is held back (the caller bounds the wait)."""
        while self._held:
            self._released.clear()
            await self._released.wait()

    def drop_held(self) -> None:
        """At the end, what a delay still holds is reported undelivered."""
        for timer, to, msg_id in self._held.values():
            timer.cancel()
            reason = "still held by a delay condition when the VM stopped"
            self._events.on_send_failed(to, msg_id, reason)
        self._held.clear()

    def _release(self, serial: int, line: bytes) -> None:
        _, to, msg_id = self._held.pop(serial)
        self._deliver(to, line, msg_id)
        if not self._held:
            self._released.set()

    def _deliver(self, to: int, line: bytes, msg_id: str) -> None:
        reason = self._links[to].send(line, msg_id)
        if reason is not None:
            self._events.on_send_failed(to, msg_id, reason)
