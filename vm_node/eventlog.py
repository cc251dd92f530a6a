"""The VM's structured log: one JSON line per event, to a file and stdout.

structlog is configured once per process here. Each line is written with a
single unbuffered write, so a line is on disk as soon as the event happened
and a VM killed by any signal leaves only complete lines behind.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from vm_node.clock import Clocks


def log_path(log_dir: Path, vm: int, incarnation: int) -> Path:
    """`vm<i>.jsonl` for the first run of VM i, `vm<i>.<k>.jsonl` after k restarts."""
    return log_dir / (f"vm{vm}.jsonl" if incarnation == 0 else f"vm{vm}.{incarnation}.jsonl")


def next_incarnation(log_dir: Path, vm: int) -> int:
    """How many times this VM has run before in this log directory."""
    k = 0
    while log_path(log_dir, vm, k).exists():
        k += 1
    return k


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a restarted VM picks up: its last logged clocks and the trial's start."""

    lamport: int
    vector: tuple[int, ...]
    start_at: float | None

    def to_json(self, incarnation: int) -> dict[str, Any]:
        """The `resume` setting that hands this to incarnation `incarnation` (config.py)."""
        return {"incarnation": incarnation, "lamport": self.lamport} | {
            "vector": list(self.vector),
            "start_at": self.start_at,
        }


@dataclass(frozen=True, slots=True)
class HandedBack:
    """An incarnation's number and resume state, given by the orchestrator: where the log
    directory does not outlive a VM's container (a Swarm task's tmpfs)."""

    incarnation: int
    resume: Resume


def read_resume(log_dir: Path, vm: int, incarnation: int, vms: int) -> Resume | None:
    """The state this VM's earlier incarnations logged, or None on a first run."""
    if incarnation == 0:
        return None
    start_at: float | None = None
    last: dict[str, Any] | None = None
    for k in range(incarnation):
        for line in log_path(log_dir, vm, k).read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut by the kill
            last = record
            if record.get("event") == "ready" and start_at is None:
                start_at = record.get("start_at")
    if last is None:
        return None
    vector = tuple(int(last["vc"].get(str(j), 0)) for j in range(vms))
    return Resume(int(last["lamport"]), vector, start_at)


class LineSink:
    """A structlog logger that writes each rendered line to a file and stdout."""

    def __init__(self, path: Path, echo: bool) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._echo = echo

    def msg(self, line: bytes) -> None:
        line += b"\n"
        os.write(self._fd, line)
        if self._echo:
            try:
                os.write(1, line)
            except OSError:  # stdout gone (closed pipe): the file still has it
                self._echo = False

    info = warning = error = msg

    def close(self) -> None:
        os.close(self._fd)


class EventLog:
    """Writes the events of one VM incarnation, each with its clocks and queue."""

    def __init__(
        self, sink: LineSink, *, run: str, vm: int, incarnation: int, clock_offset: float = 0.0
    ) -> None:
        """`clock_offset` seconds are added to every timestamp: a host whose clock is off."""
        seq = itertools.count()

        def stamp(_: Any, __: str, event_dict: structlog.typing.EventDict) -> Any:
            # Key order for readers: what, when, which line, then the rest.
            when = (event_dict.pop("timestamp", None) or time.time()) + clock_offset
            head = {"event": event_dict.pop("event"), "timestamp": when, "seq": next(seq)}
            head.update(event_dict)
            return head

        self._sink = sink
        self._log = structlog.wrap_logger(
            sink,
            processors=[stamp, structlog.processors.JSONRenderer(serializer=orjson.dumps)],
            wrapper_class=structlog.make_filtering_bound_logger(0),
            cache_logger_on_first_use=True,
        ).bind(run=run, vm=vm, incarnation=incarnation)

    def event(
        self, event: str, clocks: Clocks, queue_len: int, timestamp: float | None, **fields: Any
    ) -> None:
        """Log one event with the clocks and queue length after it (at `timestamp`, or now)."""
        self._log.info(
            event,
            timestamp=timestamp,
            lamport=clocks.lamport,
            vc=clocks.vc(),
            queue_len=queue_len,
            **fields,
        )

    def close(self) -> None:
        self._sink.close()
