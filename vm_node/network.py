"""TCP plumbing: a server that reads peers' frames, and one persistent link per peer.

Readers run independently of the tick loop and of each other: each inbound
connection has its own task that validates frames and hands them on. Each
outbound link is a task that connects, says hello, watches the connection
and reconnects with capped exponential backoff; `send` never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from vm_node.config import PeerAddress
from vm_node.wire import OVERSIZED, BadFrame, Codec, Frame, Hello, LineSplitter

HELLO_TIMEOUT = 5.0  # seconds a new connection may stay silent before its hello
CONNECT_TIMEOUT = 1.0
BACKOFF_FIRST, BACKOFF_CAP = 0.05, 1.0
MAX_PENDING_CONNECTIONS = 256  # connections that have not said hello yet
WRITE_BUFFER_LIMIT = 1 << 20  # bytes queued to a peer that is not reading
READ_CHUNK = 64 * 1024
USER_TIMEOUT_MS = 2000  # unacknowledged data for this long ends a connection


class FrameHandler(Protocol):
    def on_frame(self, frame: Frame) -> None: ...

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None: ...


class LinkEvents(Protocol):
    def on_peer_up(self, peer: int) -> None: ...

    def on_peer_down(self, peer: int, reason: str) -> None: ...


class Receiver:
    """Accepts connections from peers and passes their valid frames on."""

    def __init__(self, codec: Codec, handler: FrameHandler) -> None:
        self._codec = codec
        self._handler = handler
        self._pending = 0
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, reuse_address=True, limit=READ_CHUNK
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every reader (each sees its connection close)."""
        if self._server is not None:
            self._server.close()
        readers = list(self._connections.values())
        for writer in list(self._connections):
            writer.close()
        if readers:
            await asyncio.wait(readers, timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _address(writer)
        if self._pending >= MAX_PENDING_CONNECTIONS:
            self._handler.on_bad_frame("too many connections without hello", peer, None)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        self._pending += 1
        sender: int | None = None
        splitter = LineSplitter()
        try:
            while True:
                async with asyncio.timeout(HELLO_TIMEOUT if sender is None else None):
                    data = await reader.read(READ_CHUNK)
                if not data:
                    break
                for line in splitter.feed(data):
                    known = sender
                    sender = self._accept(line, peer, sender)
                    if known is None and sender is not None:
                        self._pending -= 1
            if splitter.pending:
                self._handler.on_bad_frame("unterminated line at end of connection", peer, sender)
        except TimeoutError:
            self._handler.on_bad_frame(f"no hello within {HELLO_TIMEOUT:g} s", peer, None)
        except OSError:
            pass  # the peer went away; its link will reconnect
        finally:
            if sender is None:
                self._pending -= 1
            self._connections.pop(writer, None)
            writer.close()

    def _accept(self, line: bytes | object, peer: str, sender: int | None) -> int | None:
        """Handle one line; returns who this connection belongs to afterwards."""
        if line is OVERSIZED or not isinstance(line, bytes):
            self._handler.on_bad_frame("line over 4096 bytes", peer, sender)
            return sender
        try:
            frame = self._codec.decode(line)
        except BadFrame as e:
            self._handler.on_bad_frame(str(e), peer, sender)
            return sender
        if sender is None:
            if isinstance(frame, Hello):
                return frame.sender
            self._handler.on_bad_frame("frame before hello", peer, None)
        elif isinstance(frame, Hello):
            self._handler.on_bad_frame("second hello on one connection", peer, sender)
        elif frame.sender != sender:
            self._handler.on_bad_frame(f"from {frame.sender} on VM {sender}'s link", peer, sender)
        else:
            self._handler.on_frame(frame)
        return sender


@dataclass(frozen=True, slots=True)
class Resolver:
    """Where peer j is: explicit; else `vm<j>:base_port` by name; else 127.0.0.1:base_port + j.

    The fallback is for plain processes on one host, where no `vm<i>` name
    resolves. Where this VM's own name resolves (containers), a peer's name
    that does not resolve yet is retried rather than looked for on 127.0.0.1.
    """

    me: int
    base_port: int
    explicit: dict[int, PeerAddress]

    async def __call__(self, peer: int) -> PeerAddress:
        if peer in self.explicit:
            return self.explicit[peer]
        name = f"vm{peer}"  # resolved afresh on every attempt: a restarted peer has a new IP
        if await _resolves(name, self.base_port):
            return PeerAddress(name, self.base_port)
        if await _resolves(f"vm{self.me}", self.base_port):
            raise OSError(f"{name} does not resolve yet")
        return PeerAddress("127.0.0.1", self.base_port + peer)


async def _resolves(name: str, port: int) -> bool:
    try:
        await asyncio.get_running_loop().getaddrinfo(name, port)
    except (socket.gaierror, UnicodeError):
        return False
    return True


class PeerLink:
    """The persistent connection to one peer, re-established while the VM ticks."""

    def __init__(
        self,
        peer: int,
        resolve: Callable[[int], Awaitable[PeerAddress]],
        hello: bytes,
        events: LinkEvents,
    ) -> None:
        self.peer = peer
        self._resolve = resolve
        self._hello = hello
        self._events = events
        self._writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()

    def send(self, line: bytes) -> str | None:
        """Queue one line for the peer; returns why it cannot be sent, or None."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return "not connected"
        if writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            return "peer not reading (write buffer full)"
        writer.write(line)
        return None

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                address = await self._resolve(self.peer)
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(address.host, address.port)
            except (OSError, TimeoutError):
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, BACKOFF_CAP)
                continue
            _tune(writer)
            writer.write(self._hello)
            self._writer = writer
            self.connected.set()
            self._events.on_peer_up(self.peer)
            backoff = BACKOFF_FIRST
            reason = await _until_closed(reader)
            self._writer = None
            self.connected.clear()
            writer.close()
            self._events.on_peer_down(self.peer, reason)

    async def flush(self) -> None:
        """Wait (briefly, by the caller's deadline) until queued lines are sent."""
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(OSError):
                await writer.drain()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _until_closed(reader: asyncio.StreamReader) -> str:
    """Peers never write on our outbound link: any read ends with its closing."""
    try:
        while await reader.read(READ_CHUNK):
            pass
        return "connection closed by peer"
    except OSError as e:
        return f"connection lost: {e.strerror or type(e).__name__}"


def _tune(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: a silent peer fails our sends
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)


def _address(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    return f"{peername[0]}:{peername[1]}" if peername else "unknown"
