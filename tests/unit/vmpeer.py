"""A real `python -m vm_node` (as vm0 of 2) with the test playing vm1 over real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from orchestrator.poll import poll

RUN = "unit"
READ_TIMEOUT = 10.0  # seconds for the VM to read what was sent to it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def frame(**fields: Any) -> bytes:
    return orjson.dumps({"run": RUN, "from": 1} | fields) + b"\n"


def message(msg_id: str, lamport: int, vc: dict[str, int] | None = None) -> bytes:
    vc = vc or {"0": 0, "1": lamport}
    return frame(type="msg", to=0, msg_id=msg_id, lamport=lamport, vc=vc)


class Acknowledger(threading.Thread):
    """Answers the VM's link as a live peer would: acks its hello, messages and pings."""

    def __init__(self, conn: socket.socket) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.received = bytearray()

    def run(self) -> None:
        delivered, pending = 0, b""
        while True:
            try:
                chunk = self.conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                kind = orjson.loads(line).get("type")
                delivered += kind == "msg"
                if kind in ("hello", "msg", "ping"):
                    self.conn.sendall(frame(type="ack", count=delivered))


def unread(conn: socket.socket) -> int:
    """Bytes sent on `conn`, a TCP connection within this machine, that the process at its
    other end has not read yet: those not yet acknowledged and those waiting in the
    receiver's queue, as /proc/net/tcp lists both ends."""
    mine, theirs = conn.getsockname()[1], conn.getpeername()[1]
    total = 0
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
        unacknowledged, waiting = (int(queue, 16) for queue in fields[4].split(":"))
        if (local, remote) == (mine, theirs):
            total += unacknowledged
        elif (local, remote) == (theirs, mine):
            total += waiting
    return total


def log_lines(log: Path) -> list[dict[str, Any]]:
    """The log's whole lines: a running VM's last line may be half written as we read it."""
    data = log.read_bytes()
    return [orjson.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def wait_for(log: Path, event: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The log's `event` lines, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in log_lines(log) if r["event"] == event] if log.exists() else []
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {count} {event!r} lines in {log.name} within {timeout} s")


@dataclass
class FakePeer:
    proc: subprocess.Popen[bytes]
    to_vm: socket.socket  # our link into the VM's server
    from_vm: Acknowledger  # the VM's link into us
    log: Path

    def send(self, data: bytes) -> None:
        self.to_vm.sendall(data)

    def send_read(self, data: bytes) -> None:
        """Send `data` and return once the VM has read it, so that what is sent next comes
        to it in a read of its own."""
        self.to_vm.sendall(data)
        read = poll(lambda: unread(self.to_vm) == 0, READ_TIMEOUT, interval=0.005)
        assert read, f"the VM left {unread(self.to_vm)} bytes unread for {READ_TIMEOUT:g} s"

    def lines(self) -> list[dict[str, Any]]:
        return log_lines(self.log)

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(self.log, event, count, timeout)

    def stderr(self) -> str:
        return (self.log.parent / "stderr.txt").read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Signal the VM; returns the seconds it took to exit."""
        began = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        return time.monotonic() - began


def start_vm(log_dir: Path, *flags: str, asyncio_debug: bool = True) -> FakePeer:
    """vm0 of 2, with the test as vm1. In asyncio's debug mode by default, which reports
    what the VM leaves behind (checked when the test ends); a stress test that would be
    slowed past its point by the mode's bookkeeping turns it off."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    vm_port = free_port()
    settings = {
        "vm": 0,
        "vms": 2,
        "run": RUN,
        "host": "127.0.0.1",
        "port": vm_port,
        "peers": f"1=127.0.0.1:{listener.getsockname()[1]}",
        "log-dir": log_dir,
        "log-stream": "file",
        "bye-timeout": 0.3,
        "rate": 20,
        "duration": 600,
    }
    args = [item for key, value in settings.items() for item in (f"--{key}", str(value))]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vm_node", *args, *flags],
        stderr=(log_dir / "stderr.txt").open("wb"),  # kept beside the log for diagnosis
        env=os.environ | ({"PYTHONASYNCIODEBUG": "1"} if asyncio_debug else {}),
    )
    from_vm, _ = listener.accept()
    listener.close()
    acknowledger = Acknowledger(from_vm)
    acknowledger.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            to_vm = socket.create_connection(("127.0.0.1", vm_port), timeout=1)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    return FakePeer(proc, to_vm, acknowledger, log_dir / "vm0.jsonl")
