"""The VM's server: reads every peer's frames, independently of ticks and of each other.

Each inbound connection has its own task. Valid frames are handed on; every
message and ping is acknowledged on the same connection, so the sender knows
what arrived. Anything invalid is reported with its reason and dropped.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from vm_node.wire import Ack, BadFrame, Codec, Frame, Hello, LineSplitter, Message, Oversized, Ping

HELLO_TIMEOUT = 5.0  # seconds a new connection may stay silent before its hello
MAX_PENDING_CONNECTIONS = 256  # connections that have not said hello yet
READ_CHUNK = 64 * 1024


class FrameHandler(Protocol):
    def on_frame(self, frame: Frame) -> None: ...

    def on_hello(self, sender: int, host: str) -> None: ...

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None: ...


class _Connection:
    """One inbound connection: who it belongs to once it said hello, what it delivered."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.sender: int | None = None
        self.delivered = 0
        peername = writer.get_extra_info("peername")
        self.host = peername[0] if peername else "unknown"
        self.address = f"{peername[0]}:{peername[1]}" if peername else "unknown"


class Receiver:
    def __init__(self, codec: Codec, handler: FrameHandler) -> None:
        self._codec = codec
        self._handler = handler
        self._pending = 0
        self._tasks: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen (SO_REUSEADDR: a restarted VM gets its port back at once); returns the port."""
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every reader (each sees its connection close)."""
        if self._server is not None:
            self._server.close()
        readers = list(self._tasks.values())
        for writer in list(self._tasks):
            writer.close()
        if readers:
            await asyncio.wait(readers, timeout=1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        if self._pending >= MAX_PENDING_CONNECTIONS:
            self._handler.on_bad_frame("too many connections without hello", conn.address, None)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks[writer] = task
        self._pending += 1
        splitter = LineSplitter()
        try:
            while True:
                async with asyncio.timeout(HELLO_TIMEOUT if conn.sender is None else None):
                    data = await reader.read(READ_CHUNK)
                if not data:
                    break
                for line in splitter.feed(data):
                    self._accept(line, conn)
            if splitter.pending:
                reason = "unterminated line at end of connection"
                self._handler.on_bad_frame(reason, conn.address, conn.sender)
        except TimeoutError:
            reason = f"no hello within {HELLO_TIMEOUT:g} s"
            self._handler.on_bad_frame(reason, conn.address, None)
        except OSError:
            pass  # the peer went away; its link will reconnect
        finally:
            if conn.sender is None:
                self._pending -= 1
            self._tasks.pop(writer, None)
            writer.close()

    def _accept(self, line: bytes | Oversized, conn: _Connection) -> None:
        if not isinstance(line, bytes):  # OVERSIZED
            self._handler.on_bad_frame("line over 4096 bytes", conn.address, conn.sender)
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
        else:
            self._handler.on_frame(frame)
            if isinstance(frame, Message):  # it is on the inbox now: say so
                conn.delivered += 1
                self._ack(conn)

    def _ack(self, conn: _Connection) -> None:
        if not conn.writer.is_closing():
            conn.writer.write(self._codec.encode(Ack(self._codec.me, conn.delivered)))
