"""Harness processes built from vm_node's own parts, for the latency and throughput benchmarks.

Needs only the standard library, orjson and vm_node, so it runs unchanged in
the VM image (bench/ is bind-mounted there). Every time is `time.time_ns()`:
processes on one kernel (containers included) share that clock, so a send
time from one process and an arrival time from another make a one-way latency.

Roles:

- `serve`: a raw socket server (one-way: time each line on arrival; echo: send
  it back) and a vm_node `Receiver` whose handler times each message as it is
  put on the inbox. Prints the arrival times as JSON when the client says bye.
- `client`: the same small message three ways, one at a time with a pause
  between: raw one-way, raw round trip, and vm_node's `Codec` + `PeerLink`
  (the path of a VM's send). Prints the send times and round trips as JSON.
- `sink`: a stand-in peer for a VM under load: joins its start barrier,
  acknowledges its messages (once per read, counting rather than decoding
  them) and answers its bye, with no clocks and no log.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from typing import Any

import orjson

from vm_node.config import PeerAddress
from vm_node.peerlink import PeerLink
from vm_node.receiver import Receiver
from vm_node.vocabulary import Bye, Frame, Hello, Message, Ping
from vm_node.wire import Codec

RUN = "bench-probe-t1-20260101T000000-beef"  # as long as a real run id
SERVER, CLIENT = 1, 0
CONNECT_TIMEOUT = 30.0


def sample_message(codec: Codec, n: int) -> bytes:
    return codec.message(SERVER, f"{CLIENT}-0-{n}", n + 1, {"0": n + 1, "1": 0})


# --- serve ------------------------------------------------------------------


class _Inbox:
    """A vm_node FrameHandler that times each message as it reaches the inbox."""

    def __init__(self) -> None:
        self.arrivals: list[int] = []
        self.ids: list[str] = []
        self.bad = 0
        self.done = asyncio.Event()

    def on_frame(self, frame: Frame) -> None:
        if isinstance(frame, Message):
            self.arrivals.append(time.time_ns())
            self.ids.append(frame.msg_id)
        elif isinstance(frame, Bye):
            self.done.set()

    def on_hello(self, sender: int, host: str) -> None:
        pass

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None:
        self.bad += 1

    def on_heard(self, sender: int) -> None:
        pass


def _raw_server(port: int, arrivals: list[int]) -> None:
    """Blocking sockets, one connection at a time: `oneway` or `echo` as its first line."""
    listener = socket.create_server(("0.0.0.0", port), reuse_port=False)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            mode = _read_line(conn)
            if mode == b"oneway":
                while chunk := conn.recv(65536):
                    now = time.time_ns()
                    arrivals.extend([now] * chunk.count(b"\n"))
            elif mode == b"echo":
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data.strip()


async def serve(raw_port: int, vm_port: int) -> dict[str, Any]:
    raw_arrivals: list[int] = []
    threading.Thread(target=_raw_server, args=(raw_port, raw_arrivals), daemon=True).start()
    inbox = _Inbox()
    receiver = Receiver(Codec(RUN, SERVER, 2), inbox)
    await receiver.start("0.0.0.0", vm_port)
    await inbox.done.wait()
    await receiver.close()
    return {
        "raw_arrivals": raw_arrivals,
        "vm_arrivals": inbox.arrivals,
        "vm_ids": inbox.ids,
        "bad_frames": inbox.bad,
    }


# --- client -----------------------------------------------------------------


def _connect(host: str, port: int) -> socket.socket:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


def raw_oneway(host: str, port: int, line: bytes, count: int, interval: float) -> list[int]:
    sends = []
    with _connect(host, port) as conn:
        conn.sendall(b"oneway\n")
        time.sleep(0.05)
        for _ in range(count):
            sends.append(time.time_ns())
            conn.sendall(line)
            time.sleep(interval)
        time.sleep(0.05)
    return sends


def raw_round_trips(host: str, port: int, line: bytes, count: int, interval: float) -> list[int]:
    trips = []
    with _connect(host, port) as conn:
        conn.sendall(b"echo\n")
        for _ in range(count):
            started = time.perf_counter_ns()
            conn.sendall(line)
            got = 0
            while got < len(line):
                got += len(conn.recv(65536))
            trips.append(time.perf_counter_ns() - started)
            time.sleep(interval)
    return trips


class _Quiet:
    def on_peer_up(self, peer: int) -> None:
        pass

    def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None:
        pass


async def vm_sends(host: str, port: int, count: int, interval: float) -> list[int]:
    """Send `count` messages the way Node._transmit does: encode, then PeerLink.send."""
    codec = Codec(RUN, CLIENT, 2)

    async def resolve(peer: int, hint: str | None) -> PeerAddress:
        return PeerAddress(host, port)

    link = PeerLink(SERVER, resolve, codec, _Quiet())
    task = asyncio.create_task(link.run())
    async with asyncio.timeout(CONNECT_TIMEOUT):
        await link.connected.wait()
    sends = []
    for n in range(count):
        msg_id = f"{CLIENT}-0-{n}"
        sends.append(time.time_ns())
        line = codec.message(SERVER, msg_id, n + 1, {"0": n + 1, "1": 0})
        link.send(line, msg_id)
        await asyncio.sleep(interval)
    async with asyncio.timeout(5):
        await link.flush()
    link.send(codec.bye())
    await asyncio.sleep(0.05)
    task.cancel()
    link.close()
    return sends


def client(host: str, raw_port: int, vm_port: int, count: int, interval: float) -> dict[str, Any]:
    line = sample_message(Codec(RUN, CLIENT, 2), 10)
    return {
        "line_bytes": len(line),
        "raw_sends": raw_oneway(host, raw_port, line, count, interval),
        "raw_round_trips": raw_round_trips(host, raw_port, line, count, interval),
        "vm_sends": asyncio.run(vm_sends(host, vm_port, count, interval)),
    }


# --- sink -------------------------------------------------------------------


class _SinkConnection(asyncio.Protocol):
    """One inbound connection of a sink: acks once per chunk read, decodes only control frames
    (messages are counted, not parsed: the sink must cost the VM under test nothing)."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.pending = b""
        self.delivered = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        *lines, self.pending = (self.pending + data).split(b"\n")
        codec = self.sink.codec
        answer = False
        for line in lines:
            if b'"type":"msg"' in line:
                self.delivered += 1
                answer = True
                continue
            frame = codec.decode(line)
            if isinstance(frame, Hello | Ping):
                answer = True
            elif isinstance(frame, Bye):
                self.sink.bye()
        if answer and self.transport is not None:
            self.transport.write(codec.ack(self.delivered))
            self.sink.messages = max(self.sink.messages, self.delivered)


class _Sink:
    """Peer `me` of a VM under test: joins its barrier, takes its messages, answers its bye."""

    def __init__(self, link: PeerLink, codec: Codec) -> None:
        self.link, self.codec = link, codec
        self.messages = 0
        self.done = asyncio.Event()

    def bye(self) -> None:
        self.link.send(self.codec.bye())
        self.done.set()


async def sink(run: str, me: int, vms: int, port: int, target: int, target_port: int) -> int:
    codec = Codec(run, me, vms)

    async def resolve(peer: int, hint: str | None) -> PeerAddress:
        return PeerAddress("127.0.0.1", target_port)

    link = PeerLink(target, resolve, codec, _Quiet())
    handler = _Sink(link, codec)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _SinkConnection(handler), "127.0.0.1", port)
    task = asyncio.create_task(link.run())
    await link.connected.wait()
    link.send(codec.ready(0.0))  # the VM's own proposal is later: it wins
    await handler.done.wait()
    await asyncio.sleep(0.2)  # let the bye go out
    task.cancel()
    link.close()
    server.close()
    return handler.messages


# --- command line -----------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)
    s = roles.add_parser("serve")
    s.add_argument("--raw-port", type=int, required=True)
    s.add_argument("--vm-port", type=int, required=True)
    c = roles.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--raw-port", type=int, required=True)
    c.add_argument("--vm-port", type=int, required=True)
    c.add_argument("--count", type=int, default=2000)
    c.add_argument("--interval", type=float, default=0.001, help="seconds between messages")
    k = roles.add_parser("sink")
    k.add_argument("--run", required=True)
    k.add_argument("--vm", type=int, required=True)
    k.add_argument("--vms", type=int, required=True)
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--target", type=int, default=0)
    k.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args(argv)
    result: Any
    if args.role == "serve":
        result = asyncio.run(serve(args.raw_port, args.vm_port))
    elif args.role == "client":
        result = client(args.host, args.raw_port, args.vm_port, args.count, args.interval)
    else:
        result = {
            "messages": asyncio.run(
                sink(args.run, args.vm, args.vms, args.port, args.target, args.target_port)
            )
        }
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
