"""Each VM's log lines, taken from its service logs into `logs/vm<i>.jsonl` as they come.

Under Swarm a bind mount is one host's folder, but every VM echoes each log
line to stdout, so the service logs carry them all, from whichever node. One
`docker service logs --follow` per VM feeds a LogWriter, which writes each
complete line once, in the VM's own file, as soon as it arrives: the
LogFollower sees readiness and progress as with the other backends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from orchestrator.backends.swarm.docker_stack import StackCli
from vm_node.rundir import log_name

RESTART_INTERVAL = 0.5  # seconds before following again when the CLI gave up
STOP_TIMEOUT = 5.0  # seconds for a follower to end once terminated


@dataclass
class LogWriter:
    """Writes the lines of VM `vm` in `run` to their incarnation's file, each line once.

    A line is kept when it is a JSON object of this VM and run and its `seq`
    is past the last one written for its incarnation: a stream that starts
    again from the beginning adds nothing twice. Anything else is counted.
    A longer copy of an incarnation's file, from the VM's node, replaces the
    streamed one (`adopt`), the stream going on past its last line.
    """

    logs: Path
    vm: int
    run: str
    written: int = 0
    repeated: int = 0
    foreign: int = 0  # not a log line of this VM and run
    gaps: int = 0  # seq jumps: lines the stream never delivered
    stopped: bool = False  # the `stop` line has been written
    last_line_at: float | None = None  # time.monotonic() of the last line taken
    _last_seq: dict[int, int] = field(default_factory=dict)
    _files: dict[int, BinaryIO] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the stream's thread, adopt

    def take(self, line: bytes) -> None:
        """One complete line, without its newline."""
        with self._lock:
            self._take(line)

    def _take(self, line: bytes) -> None:
        self.last_line_at = time.monotonic()
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.foreign += 1
            return
        if not (
            isinstance(record, dict)
            and record.get("vm") == self.vm
            and record.get("run") == self.run
            and isinstance(seq := record.get("seq"), int)
            and isinstance(incarnation := record.get("incarnation"), int)
        ):
            self.foreign += 1
            return
        last = self._last_seq.get(incarnation, -1)
        if seq <= last:
            self.repeated += 1
            return
        self.gaps += seq > last + 1
        self._last_seq[incarnation] = seq
        self._file(incarnation).write(line + b"\n")  # one write: readers see whole lines
        self.written += 1
        self.stopped = self.stopped or record.get("event") == "stop"

    def adopt(self, incarnation: int, copy: Path) -> Adopted:
        """Keep `copy` (the VM's own file of `incarnation`) in place of the streamed file
        where it has more lines; `copy` is moved or removed."""
        with self._lock:
            path = self.logs / log_name(self.vm, incarnation)
            data = copy.read_bytes()
            data = data[: data.rfind(b"\n") + 1]  # whole lines only
            streamed = path.read_bytes().count(b"\n") if path.exists() else 0
            adopted = Adopted(log_name(self.vm, incarnation), data.count(b"\n"), streamed)
            if not adopted.kept:
                copy.unlink()
                return adopted
            if incarnation in self._files:
                self._files.pop(incarnation).close()
            copy.write_bytes(data)
            copy.replace(path)
            last = orjson.loads(data[data.rfind(b"\n", 0, len(data) - 1) + 1 :])
            self._last_seq[incarnation] = int(last["seq"])
            self.stopped = self.stopped or last.get("event") == "stop"
            return adopted

    def _file(self, incarnation: int) -> BinaryIO:
        if incarnation not in self._files:
            path = self.logs / log_name(self.vm, incarnation)
            self._files[incarnation] = path.open("ab", buffering=0)
        return self._files[incarnation]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


@dataclass(frozen=True, slots=True)
class Adopted:
    """An incarnation's file as the VM's node kept it, beside the streamed one."""

    file: str
    lines: int  # in the node's copy
    streamed: int  # in the streamed file

    @property
    def kept(self) -> bool:
        """The node's copy replaced the streamed file: it had lines the stream lacked."""
        return self.lines > self.streamed


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Close the follower's stdin: it stops the CLI (StackCli.follow_logs)."""
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.close()


class ServiceLogStream:
    """Follows one service's logs in a thread until closed, following again if the CLI ends."""

    def __init__(self, cli: StackCli, service: str, writer: LogWriter, stderr: Path) -> None:
        self.service = service
        self.writer = writer
        self._cli = cli
        self._stderr = stderr
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._follow, name=f"logs {service}", daemon=True)

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread.start()

    def anomalies(self) -> dict[str, int]:
        """Lines repeated, foreign or missing (gaps) so far; empty when there were none."""
        w = self.writer
        counts = {"repeated": w.repeated, "foreign": w.foreign, "gaps": w.gaps}
        return counts if any(counts.values()) else {}

    def quiet_for(self) -> float:
        """Seconds since the last line, or since the stream started."""
        return time.monotonic() - (self.writer.last_line_at or self._started_at)

    def stop(self) -> None:
        """Stop following (lines already read are written, a half line is dropped)."""
        with self._lock:
            self._closing.set()
            proc = self._proc
        if proc is not None:
            _end(proc)

    def close(self) -> None:
        """Stop following and wait until the thread is done and the files are closed."""
        self.stop()
        self._thread.join(STOP_TIMEOUT)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the shell and the CLI
            proc.wait()
            self._thread.join(STOP_TIMEOUT)
        self.writer.close()

    def _follow(self) -> None:
        while (proc := self._spawn()) is not None:
            assert proc.stdout is not None
            # readline waits for the newline: a line split across reads comes out whole
            for line in proc.stdout:
                if line.endswith(b"\n"):  # else the CLI ended mid-line: an incomplete line
                    self.writer.take(line[:-1])
            _end(proc)
            proc.wait()
            self._closing.wait(RESTART_INTERVAL)

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._closing.is_set():
                return None
            with self._stderr.open("ab") as stderr:
                self._proc = self._cli.follow_logs(self.service, stderr)
            return self._proc
