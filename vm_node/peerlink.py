"""One persistent link to each peer: connect, say hello, watch, reconnect.

A link is up once the peer answers its hello. The peer acknowledges every
message on the link; a link that hears nothing, neither on it nor on the
peer's own link to us, pings (slowly while the VMs wait for each other at
the start), and one that stays silent for SILENT_BEATS pings is declared
down: its unacknowledged messages are reported as not delivered, and it
reconnects with capped exponential backoff, resolving the peer's name
afresh each time. Until a link has first been up it may go to the address
the orchestrator placed the peer at, without a lookup. `send` never waits.

The connection is an asyncio protocol: acks are taken in the event loop's
read callback, as they arrive (a stream would wake a task for each, a second
turn of the loop). Only silence wakes the link's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from vm_node.config import PeerAddress
from vm_node.errors import BadFrame
from vm_node.vocabulary import Ack
from vm_node.wire import READ_BUFFER, TOO_LONG, Codec, LineSplitter, Oversized

if TYPE_CHECKING:
    from asyncio import Timeout

CONNECT_TIMEOUT = 0.5
# Seconds of silence before a ping: one ping, with the rest of DEAD_AFTER to be answered.
# A ping and its ack wake both VMs, so pings are kept rare; on TCP a second ping before
# DEAD_AFTER would only wait behind the first.
HEARTBEAT = 0.75
DEAD_AFTER = 1.5  # seconds of silence before the link is declared down
# Before the first tick nothing else is said, so every link pings: n VMs at the start
# barrier have n(n - 1) links, and their pings take CPU that the VMs still starting need.
# A slower beat is safe there: a peer that dies ends its connections, and the barrier
# waits for it anyway.
BARRIER_HEARTBEAT = 3.0  # the same two beats: a link silent for 6 s is declared down
# A fleet has N(N-1) links: beyond BARRIER_FLEET VMs the barrier's beat slows with the
# square of the fleet, so that a larger fleet pings no more often than that one.
BARRIER_FLEET = 50
SILENT_BEATS = round(DEAD_AFTER / HEARTBEAT)  # heartbeats of silence that end a link
BACKOFF_FIRST, BACKOFF_CAP = 0.05, 1.0
# A peer never linked to that is not named or not listening yet: it will call us, and its
# hello wakes the link. Retrying is only a safety net, so it is slow: quick retries from
# every VM of a starting fleet take the CPU and the name server that the fleet needs.
STARTUP_BACKOFF_FIRST, STARTUP_BACKOFF_CAP = 2.0, 8.0
WRITE_BUFFER_LIMIT = 1 << 20  # bytes queued to a peer that is not reading
USER_TIMEOUT_MS = 2000  # unacknowledged TCP data for this long ends a connection
NOT_CONNECTED = "not connected"  # why a send on a link that is down fails


def barrier_heartbeat(vms: int) -> float:
    """Seconds of silence before a ping while a fleet of `vms` waits at the start barrier."""
    return BARRIER_HEARTBEAT * max(1.0, (vms / BARRIER_FLEET) ** 2)


class LinkEvents(Protocol):
    def on_peer_up(self, peer: int) -> None: ...

    def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None: ...


class PeerLink:
    def __init__(
        self,
        peer: int,
        resolve: Callable[[int, str | None], Awaitable[PeerAddress]],
        codec: Codec,
        events: LinkEvents,
        start: PeerAddress | None = None,
        heartbeat: float = BARRIER_HEARTBEAT,
        first_answer: float = DEAD_AFTER,
    ) -> None:
        """`start`: where the peer is until the link has first been up (no name lookup);
        `heartbeat`: the beat until the trial starts (`barrier_heartbeat`);
        `first_answer`: seconds to wait for the answer to the first hello that gets
        one, as long as a starting fleet's peer may take to read it."""
        self.peer = peer
        self._resolve = resolve
        self._start = start
        self._codec = codec
        self._hello = codec.hello()
        self._ping = codec.ping()
        self._events = events
        self._stream: _Stream | None = None  # the connection while the link is up
        self._unacked: deque[str] = deque()  # msg_ids sent on this connection, in order
        self._acked = 0
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._hint: str | None = None  # where the peer's own hello last came from
        self._heard_inbound = 0.0  # when a frame last came on the peer's link to us
        self._wake = asyncio.Event()
        self._corked: list[bytes] | None = None  # lines held for one write, while corked
        self.connected = asyncio.Event()
        self.heartbeat = heartbeat  # until start_ticking
        self._first_answer = first_answer

    def cork(self, corked: bool) -> None:
        """Corked, sends are held and go out together in one write when uncorked.

        Only for a stretch with no await in it: the connection cannot change meanwhile.
        """
        if corked:
            if self._corked is None:
                self._corked = []
            return
        held, self._corked = self._corked, None
        if held and self._stream is not None:
            self._stream.transport.write(b"".join(held))

    def send(self, line: bytes, msg_id: str | None = None) -> str | None:
        """Queue one line for the peer; returns why it cannot be sent, or None."""
        stream = self._stream
        if stream is None or stream.transport.is_closing():
            return NOT_CONNECTED
        if stream.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return "peer not reading (write buffer full)"
        if self._corked is None:
            stream.transport.write(line)
        else:
            self._corked.append(line)
        if msg_id is not None:
            self._unacked.append(msg_id)
            self._all_acked.clear()
        return None

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        been_up = False
        while True:
            self._wake.clear()  # before the attempt: a hello during it must not be lost
            try:
                stream = await self._connect(DEAD_AFTER if been_up else self._first_answer)
            except (OSError, TimeoutError):
                # A fleet starting: a peer not yet named, not yet listening, or too busy
                # starting to answer, calls us once it can, and its hello wakes us.
                # Retrying sooner only loads the name server and the CPU that the
                # starting VMs need, and a storm of retries starves them further.
                starting = not been_up
                if starting:
                    backoff = max(backoff, STARTUP_BACKOFF_FIRST)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff * random.uniform(0.5, 1.0)):
                        await self._wake.wait()
                backoff = min(backoff * 2, STARTUP_BACKOFF_CAP if starting else BACKOFF_CAP)
                continue
            been_up = True
            self._start = None  # from now on by name: the peer may move (a partition)
            self._stream, self._acked = stream, 0
            self.connected.set()
            self._events.on_peer_up(self.peer)
            backoff = BACKOFF_FIRST
            try:
                reason = await self._watch(stream)
            finally:
                self._stream = None
                self.connected.clear()
                stream.transport.close()
            undelivered = list(self._unacked)
            self._unacked.clear()
            self._all_acked.set()
            self._events.on_peer_down(self.peer, reason, undelivered)

    def start_ticking(self) -> None:
        """The trial starts: silence from now on means trouble, at the usual heartbeat.

        Silence is counted afresh: the peer's `ready` just came, and the slower
        beat's silence so far must not count as missed pings. The spell under way
        ends a heartbeat from now at the latest.
        """
        self.heartbeat = HEARTBEAT
        self.heard()
        if self._stream is not None:
            self._stream.beat_changed()

    def heard(self) -> None:
        """The peer just sent a frame on its own link to us: it is alive, no ping needed."""
        self._heard_inbound = time.monotonic()  # the clock of asyncio's loop.time()

    def hint(self, host: str) -> None:
        """The peer just connected to us from `host`: if our link is down, try there now.

        A restarted container has a new address, and the name service may
        answer with the old one for a second or so.
        """
        if not self.connected.is_set():
            self._hint = host
            self._wake.set()

    async def _connect(self, answer_timeout: float) -> _Stream:
        """Open a connection and wait for the answer to our hello."""
        hint, self._hint = self._hint, None
        address = self._start or await self._resolve(self.peer, hint)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, stream = await loop.create_connection(
                lambda: _Stream(loop, self), address.host, address.port
            )
        _tune(stream.transport)
        stream.transport.write(self._hello)
        try:
            async with asyncio.timeout(answer_timeout):
                line = await stream.answer
            if line is None:
                raise OSError(stream.ended.result())
            if not isinstance(line, bytes):
                raise OSError(TOO_LONG)
            if not isinstance(self._codec.decode(line), Ack):
                raise OSError("hello not acknowledged")
        except (OSError, TimeoutError, BadFrame) as e:
            stream.transport.close()
            raise OSError(f"no answer to hello: {e}") from None
        return stream

    async def _watch(self, stream: _Stream) -> str:
        """Wait until the connection ends or falls silent; returns why.

        A ping goes out after every heartbeat of silence; SILENT_BEATS of them end
        the link. One timeout covers a whole spell: the stream pushes it on as the
        peer answers (at most every half heartbeat), so a busy link wakes no one to
        check it. When it expires, the spell either ended with silence or goes on
        under a new one.
        """
        loop = asyncio.get_running_loop()
        heard = stream.heard  # when the peer last said anything, as of the last look
        pings = 0  # sent since then
        stream.deadline = heard + self.heartbeat
        while True:
            try:
                async with asyncio.timeout_at(stream.deadline) as spell:
                    stream.spell = spell
                    return await asyncio.shield(stream.ended)
            except TimeoutError:
                stream.spell = None
                now = loop.time()
                if stream.heard > heard:  # it spoke on this link
                    heard, pings = stream.heard, 0
                if self._heard_inbound > heard:  # the peer spoke on its own link: alive
                    heard, pings = self._heard_inbound, 0
                if pings == 0 and now < heard + self.heartbeat:
                    stream.deadline = heard + self.heartbeat  # it spoke while the timeout ran
                    continue
                pings += 1
                if pings >= SILENT_BEATS:
                    return f"no answer for {pings * self.heartbeat:g} s"
                stream.transport.write(self._ping)
                # Each ping gets a whole heartbeat to be answered, however late this
                # wake-up came (the slower barrier beat, a busy machine).
                stream.deadline = now + self.heartbeat

    def _take_ack(self, line: bytes | Oversized) -> None:
        if not isinstance(line, bytes):  # OVERSIZED
            return
        try:
            frame = self._codec.decode(line)
        except BadFrame:
            return  # only our peer writes here; nothing it says changes state but acks
        if isinstance(frame, Ack) and frame.sender == self.peer:
            while self._acked < frame.count and self._unacked:
                self._unacked.popleft()
                self._acked += 1
            if not self._unacked:
                self._all_acked.set()

    async def flush(self) -> None:
        """Wait until every message sent on the link is acknowledged (caller bounds it)."""
        await self._all_acked.wait()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.transport.close()


class _Stream(asyncio.BufferedProtocol):
    """One outbound connection of `link`: its first line answers the hello, every later one
    is an ack for the link; `ended` says why the connection ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop, link: PeerLink) -> None:
        self._loop = loop
        self._link = link
        self._splitter = LineSplitter()
        self._read_buffer = memoryview(bytearray(READ_BUFFER))
        self.transport: asyncio.Transport
        # The first line, or None if the connection ended first (why: `ended`). Never an
        # exception: nobody may be waiting for it any more, and none may go unretrieved.
        self.answer: asyncio.Future[bytes | Oversized | None] = loop.create_future()
        self.ended: asyncio.Future[str] = loop.create_future()
        self.heard = loop.time()  # when the peer last said anything
        self.deadline = 0.0  # when the spell under way expires
        self.spell: Timeout | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def beat_changed(self) -> None:
        """The link's heartbeat changed: the spell under way ends one from now at the latest."""
        soon = self._loop.time() + self._link.heartbeat
        if (spell := self._running_spell()) is not None and self.deadline > soon:
            self.deadline = soon
            spell.reschedule(soon)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.heard = now = self._loop.time()
        for line in self._splitter.feed(self._read_buffer[:nbytes]):
            if not self.answer.done():
                self.answer.set_result(line)
            else:
                self._link._take_ack(line)
        # A link that hears its peer need not wake to find it was not silent: push the
        # spell's timeout on, at most every half heartbeat.
        heartbeat = self._link.heartbeat
        if (spell := self._running_spell()) is not None and self.deadline < now + heartbeat / 2:
            self.deadline = now + heartbeat
            spell.reschedule(self.deadline)

    def _running_spell(self) -> Timeout | None:
        """The spell under way, unless its timeout has fired: that one cannot be moved, and
        the link's task, about to wake, sees that the peer spoke meanwhile (`heard`)."""
        spell = self.spell
        return spell if spell is not None and not spell.expired() else None

    def eof_received(self) -> bool:
        self._end("connection closed by peer")
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError):
            self._end(f"connection lost: {exc.strerror or type(exc).__name__}")
        else:
            self._end("connection closed by peer" if exc is None else f"connection lost: {exc!r}")

    def _end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)
        if not self.answer.done():
            self.answer.set_result(None)


def _tune(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: a vanished peer fails our sends
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
