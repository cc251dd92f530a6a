"""Follows the VMs' JSONL logs while a trial runs: readiness, ticks, final totals.

Every backend leaves the logs in the run directory (a bind mount for
containers), so one follower serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vm_node.rundir import RunDir


@dataclass(slots=True)
class VmProgress:
    vm: int
    ready: bool = False
    ticks: int = 0
    lamport: int = 0
    queue_len: int = 0
    start_at: float | None = None
    first_tick_at: float | None = None
    stop: dict[str, Any] | None = None  # the `stop` line, once written


@dataclass(slots=True)
class _Tail:
    offset: int = 0
    partial: bytes = b""


@dataclass
class LogFollower:
    """Reads what was appended to each VM's log files since the last poll."""

    run_dir: RunDir
    vms: int
    progress: dict[int, VmProgress] = field(init=False)
    _tails: dict[Path, _Tail] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = {i: VmProgress(i) for i in range(self.vms)}

    def poll(self) -> dict[int, VmProgress]:
        for _, _, path in self.run_dir.log_files():
            tail = self._tails.setdefault(path, _Tail())
            with path.open("rb") as f:
                f.seek(tail.offset)
                chunk = f.read()
            tail.offset += len(chunk)
            *lines, tail.partial = (tail.partial + chunk).split(b"\n")
            for line in lines:
                self._take(line)
        return self.progress

    def _take(self, line: bytes) -> None:
        try:
            record = orjson.loads(line)
            vm = self.progress[record["vm"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        event = record.get("event")
        vm.lamport = record.get("lamport", vm.lamport)
        vm.queue_len = record.get("queue_len", vm.queue_len)
        if "tick" in record:
            vm.ticks += 1
            if vm.first_tick_at is None:
                vm.first_tick_at = record.get("timestamp")
        elif event == "ready":
            vm.ready = True
            vm.start_at = record.get("start_at")
        elif event == "stop":
            vm.stop = record

    def not_ready(self) -> list[int]:
        return [i for i, vm in self.progress.items() if not vm.ready]

    def stopped(self) -> bool:
        return all(vm.stop is not None for vm in self.progress.values())
