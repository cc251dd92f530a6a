"""One persistent link to each peer: connect, say hello, watch, reconnect.

A link is up once the peer answers its hello. The peer acknowledges every
message on the link; a link that hears nothing, neither on it nor on the
peer's own link to us, pings (slowly while the VMs wait for each other at
the start), and one that stays silent for SILENT_BEATS pings is declared
down: its unacknowledged messages are reported as not delivered, and it
reconnects with capped exponential backoff, resolving the peer's name
afresh each time. Until a link has first been up it may go to the address
the orchestrator placed the peer at, without a lookup. `send` never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from vm_node.config import PeerAddress
from vm_node.errors import BadFrame, NotYetNamed
from vm_node.vocabulary import Ack
from vm_node.wire import Codec, LineSplitter, Oversized

CONNECT_TIMEOUT = 0.5
# Seconds of silence before a ping: one ping, with the rest of DEAD_AFTER to be answered.
# Each wakes both VMs (a ping and its ack were a third of a 6/s VM's wake-ups at 0.5 s),
# and on TCP a second ping before DEAD_AFTER would only wait behind the first.
HEARTBEAT = 0.75
DEAD_AFTER = 1.5  # seconds of silence before the link is declared down
# Before the first tick nothing else is said, so every link pings: 50 VMs at the start
# barrier were ~5,000 pings a second, CPU that the VMs still starting needed. A peer
# that dies then ends its connections, and the barrier waits for it anyway.
BARRIER_HEARTBEAT = 3.0  # the same two beats: a link silent for 6 s is declared down
SILENT_BEATS = round(DEAD_AFTER / HEARTBEAT)  # heartbeats of silence that end a link
BACKOFF_FIRST, BACKOFF_CAP = 0.05, 1.0
# A peer never linked to that is not named or not listening yet: it will call us.
STARTUP_BACKOFF_FIRST, STARTUP_BACKOFF_CAP = 0.5, 4.0
WRITE_BUFFER_LIMIT = 1 << 20  # bytes queued to a peer that is not reading
READ_CHUNK = 64 * 1024
USER_TIMEOUT_MS = 2000  # unacknowledged TCP data for this long ends a connection


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
    ) -> None:
        """`start`: where the peer is until the link has first been up (no name lookup)."""
        self.peer = peer
        self._resolve = resolve
        self._start = start
        self._codec = codec
        self._hello = codec.hello()
        self._ping = codec.ping()
        self._events = events
        self._writer: asyncio.StreamWriter | None = None
        self._unacked: deque[str] = deque()  # msg_ids sent on this connection, in order
        self._acked = 0
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._hint: str | None = None  # where the peer's own hello last came from
        self._heard_inbound = 0.0  # when a frame last came on the peer's link to us
        self._wake = asyncio.Event()
        self._corked: list[bytes] | None = None  # lines held for one write, while corked
        self.connected = asyncio.Event()
        self.heartbeat = BARRIER_HEARTBEAT  # until start_ticking

    def cork(self, corked: bool) -> None:
        """Corked, sends are held and go out together in one write when uncorked.

        Only for a stretch with no await in it: the connection cannot change meanwhile.
        """
        if corked:
            if self._corked is None:
                self._corked = []
            return
        held, self._corked = self._corked, None
        if held and self._writer is not None:
            self._writer.write(b"".join(held))

    def send(self, line: bytes, msg_id: str | None = None) -> str | None:
        """Queue one line for the peer; returns why it cannot be sent, or None."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return "not connected"
        if writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return "peer not reading (write buffer full)"
        if self._corked is None:
            writer.write(line)
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
                reader, writer = await self._connect()
            except (OSError, TimeoutError) as e:
                # A fleet starting: a peer not yet named, not yet listening or whose
                # container is not there yet (its start address does not answer) calls us
                # once it listens, and its hello wakes us. Retrying sooner only loads the
                # name server and the CPU that the starting VMs need.
                starting = not been_up and isinstance(
                    e, NotYetNamed | ConnectionRefusedError | TimeoutError
                )
                if starting:
                    backoff = max(backoff, STARTUP_BACKOFF_FIRST)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff * random.uniform(0.5, 1.0)):
                        await self._wake.wait()
                backoff = min(backoff * 2, STARTUP_BACKOFF_CAP if starting else BACKOFF_CAP)
                continue
            been_up = True
            self._start = None  # from now on by name: the peer may move (a partition)
            self._writer, self._acked = writer, 0
            self.connected.set()
            self._events.on_peer_up(self.peer)
            backoff = BACKOFF_FIRST
            try:
                reason = await self._watch(reader, writer)
            finally:
                self._writer = None
                self.connected.clear()
                writer.close()
            undelivered = list(self._unacked)
            self._unacked.clear()
            self._all_acked.set()
            self._events.on_peer_down(self.peer, reason, undelivered)

    def start_ticking(self) -> None:
        """The trial starts: silence from now on means trouble, at the usual heartbeat.

        Silence is counted afresh: the peer's `ready` just came, and the slower
        beat's silence so far must not count as missed pings.
        """
        self.heartbeat = HEARTBEAT
        self.heard()

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

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection and wait for the answer to our hello."""
        hint, self._hint = self._hint, None
        address = self._start or await self._resolve(self.peer, hint)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(address.host, address.port)
        _tune(writer)
        writer.write(self._hello)
        try:
            async with asyncio.timeout(DEAD_AFTER):
                line = await reader.readuntil(b"\n")
            if not isinstance(self._codec.decode(line.rstrip(b"\n")), Ack):
                raise OSError("hello not acknowledged")
        except (OSError, TimeoutError, BadFrame, asyncio.IncompleteReadError) as e:
            writer.close()
            raise OSError(f"no answer to hello: {e}") from None
        return reader, writer

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Take the peer's acks until the connection ends or falls silent; returns why.

        A ping goes out after every heartbeat of silence; SILENT_BEATS of them end
        the link. One timeout covers a whole spell of reads (they are many, and a
        timeout per read cost as much as the rest of the read): when it expires, the
        spell either ended with silence or goes on under a new one. While the peer
        answers, the timeout is pushed on, so a busy link wakes no one to check it.
        """
        loop = asyncio.get_running_loop()
        splitter = LineSplitter()
        heard = loop.time()  # when the peer last said anything
        pings = 0  # sent since then
        deadline = heard + self.heartbeat
        while True:
            try:
                async with asyncio.timeout_at(deadline) as spell:
                    while True:
                        data = await reader.read(READ_CHUNK)
                        if not data:
                            return "connection closed by peer"
                        heard, pings = loop.time(), 0
                        for line in splitter.feed(data):
                            self._take_ack(line)
                        # A link that hears its peer need not wake to find it was not
                        # silent: push the timeout on, at most every half heartbeat.
                        if deadline < heard + self.heartbeat / 2:
                            deadline = heard + self.heartbeat
                            spell.reschedule(deadline)
            except TimeoutError:
                now = loop.time()
                if self._heard_inbound > heard:  # the peer spoke on its own link: alive
                    heard, pings = self._heard_inbound, 0
                if pings == 0 and now < heard + self.heartbeat:
                    deadline = heard + self.heartbeat  # it spoke while the timeout ran
                    continue
                pings += 1
                if pings >= SILENT_BEATS:
                    return f"no answer for {pings * self.heartbeat:g} s"
                writer.write(self._ping)
                # Each ping gets a whole heartbeat to be answered, however late this
                # wake-up came (the slower barrier beat, a busy machine).
                deadline = now + self.heartbeat
            except OSError as e:
                return f"connection lost: {e.strerror or type(e).__name__}"

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
        if self._writer is not None:
            self._writer.close()


def _tune(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if hasattr(transport, "max_size"):  # a selector transport's bytes per recv(): its
        # default (256 KiB) is allocated and shrunk on every read, which costs mmap and
        # munmap (or brk) system calls per frame; our frames are small
        transport.max_size = READ_CHUNK
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: a vanished peer fails our sends
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
