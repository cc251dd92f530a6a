"""The VM's server: reads every peer's frames, independently of ticks and of each other.

Each inbound connection is an asyncio protocol: its frames are decoded and
handed on as its bytes arrive, in the event loop's read callback (no task to
wake, so a message reaches the inbox in the same turn of the loop). Valid frames
are handed on; every message and ping is acknowledged on the same connection,
so the sender knows what arrived. Anything invalid is reported with its reason
and dropped.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

from vm_node.errors import BadFrame
from vm_node.vocabulary import Ack, Frame, Hello, Message, Ping
from vm_node.wire import READ_BUFFER, TOO_LONG, Codec, LineSplitter, Oversized

# Seconds a new connection may stay silent before its hello. A starting fleet's peers
# all connect at once while every VM is still busy starting, so the wait grows with them.
HELLO_TIMEOUT, HELLO_TIMEOUT_PER_PEER = 5.0, 0.05
# Connections that have not said hello yet, and connections the kernel queues before we
# accept them: every peer may call at once (a fleet starting, a partition healing).
MAX_PENDING_CONNECTIONS, LISTEN_BACKLOG = 256, 128


def listen_backlog(peers: int) -> int:
    """Connections the kernel may queue for us: every peer may call at once, twice."""
    return max(LISTEN_BACKLOG, 2 * peers)


CLOSE_WAIT = 1.0  # seconds close() waits for the connections to end


class FrameHandler(Protocol):
    def on_frame(self, frame: Frame) -> None: ...

    def on_hello(self, sender: int, host: str) -> None: ...

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None: ...

    def on_heard(self, sender: int) -> None: ...


class _Connection(asyncio.BufferedProtocol):
    """One inbound connection: who it belongs to once it said hello, what it delivered."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._hello_timeout = receiver.hello_timeout
        self.sender: int | None = None
        self.delivered = 0
        self.host = self.address = "unknown"
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._splitter = LineSplitter()
        self._read_buffer = memoryview(bytearray(READ_BUFFER))
        self.counted = False  # among the pending connections (not yet said hello)
        self._hello_timer: asyncio.TimerHandle | None = None
        self._closed_here = False  # by close(): whatever was half sent is not news

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        if peername:
            self.host = peername[0]
            self.address = f"{peername[0]}:{peername[1]}"
        self._receiver._opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.sender is None:
            # Each read restarts the wait for a hello: a peer still sending one is not cut off.
            self.expect_hello()
        for line in self._splitter.feed(self._read_buffer[:nbytes]):
            self._receiver._accept(line, self)

    def connection_lost(self, exc: Exception | None) -> None:
        # An OSError (reset) means the peer went away; its link will reconnect.
        if exc is None and not self._closed_here and self._splitter.pending:
            self._receiver._bad(self, "unterminated line at end of connection")
        self.cancel_hello_timer()
        self._receiver._closed(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def expect_hello(self) -> None:
        self.cancel_hello_timer()
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(self._hello_timeout, self._no_hello)

    def cancel_hello_timer(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None

    def _no_hello(self) -> None:
        self._receiver._bad(self, f"no hello within {self._hello_timeout:g} s")
        self.close()

    def close(self) -> None:
        self._closed_here = True
        if self.transport is not None:
            self.transport.close()


class Receiver:
    def __init__(self, codec: Codec, handler: FrameHandler, peers: int = 1) -> None:
        self._codec = codec
        self._handler = handler
        self._peers = peers
        self.hello_timeout = HELLO_TIMEOUT + HELLO_TIMEOUT_PER_PEER * peers
        self._max_pending = max(MAX_PENDING_CONNECTIONS, 2 * peers)
        self._pending = 0
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._closing = False

    async def start(self, host: str, port: int, fd: int | None = None) -> int:
        """Listen on `fd`, a socket the backend bound and handed over (so no other process
        can take its port meanwhile), else on host:port (SO_REUSEADDR: a restarted VM gets
        its port back at once). Returns the port."""
        loop = asyncio.get_running_loop()
        backlog = listen_backlog(self._peers)
        if fd is not None:
            sock = socket.socket(fileno=fd)
            self._server = await loop.create_server(
                lambda: _Connection(self), sock=sock, backlog=backlog
            )
        else:
            self._server = await loop.create_server(
                lambda: _Connection(self), host, port, reuse_address=True, backlog=backlog
            )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every connection, waiting until each has ended.

        A connection accepted just before the listener closed may still be handed
        over after this: it is closed at once, unreported.
        """
        self._closing = True
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if connections:
            await asyncio.wait([conn.closed for conn in connections], timeout=CLOSE_WAIT)

    # --- the connections' life ---

    def _opened(self, conn: _Connection) -> None:
        if self._closing:
            conn.close()
            return
        if self._pending >= self._max_pending:
            self._handler.on_bad_frame("too many connections without hello", conn.address, None)
            conn.close()
            return
        self._connections.add(conn)
        self._pending += 1
        conn.counted = True
        conn.expect_hello()

    def _closed(self, conn: _Connection) -> None:
        if conn.counted and conn.sender is None:
            self._pending -= 1
        conn.counted = False
        self._connections.discard(conn)

    def _bad(self, conn: _Connection, reason: str) -> None:
        self._handler.on_bad_frame(reason, conn.address, conn.sender)

    def _accept(self, line: bytes | Oversized, conn: _Connection) -> None:
        if not isinstance(line, bytes):  # OVERSIZED
            self._handler.on_bad_frame(TOO_LONG, conn.address, conn.sender)
            return
        try:
            frame = self._codec.decode(line)
        except BadFrame as e:
            self._handler.on_bad_frame(str(e), conn.address, conn.sender)
            return
        if conn.sender is None:
            if not isinstance(frame, Hello):
                self._handler.on_bad_frame("frame before hello", conn.address, None)
                return
            conn.sender = frame.sender
            conn.cancel_hello_timer()
            self._pending -= 1
            self._ack(conn)  # the link counts as up once its hello is answered
            self._handler.on_hello(frame.sender, conn.host)
        elif isinstance(frame, Hello):
            self._handler.on_bad_frame("second hello on one connection", conn.address, conn.sender)
        elif frame.sender != conn.sender:
            reason = f"from {frame.sender} on VM {conn.sender}'s link"
            self._handler.on_bad_frame(reason, conn.address, conn.sender)
        elif isinstance(frame, Ack):
            self._handler.on_bad_frame("ack on an inbound link", conn.address, conn.sender)
        elif isinstance(frame, Ping):
            self._ack(conn)
            self._handler.on_heard(conn.sender)
        else:
            self._handler.on_frame(frame)
            if isinstance(frame, Message):  # it is on the inbox now: say so
                conn.delivered += 1
                self._ack(conn)
            self._handler.on_heard(conn.sender)

    def _ack(self, conn: _Connection) -> None:
        transport = conn.transport
        if transport is not None and not transport.is_closing():
            transport.write(self._codec.ack(conn.delivered))
