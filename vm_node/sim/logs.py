"""A simulation's VMs writing their logs into a run directory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from vm_node.eventlog import EventLog
from vm_node.rundir import RunDir
from vm_node.sim.simulation import OpenLog, Simulation


def simulate(make: Callable[[OpenLog], Simulation], run_dir: RunDir) -> Simulation:
    """Run the simulation `make` gives, its VMs writing their logs into `run_dir`."""
    run_dir.logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as open_logs:

        def open_log(vm: int, incarnation: int) -> EventLog:
            log = EventLog(_FileSink(run_dir.log_path(vm, incarnation)))
            open_logs.callback(log.close)
            return log

        sim = make(open_log)
        sim.run()
    return sim


class _FileSink:
    """Lines into a buffered file: in virtual time no VM is killed mid-line."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb", buffering=1 << 20)

    def msg(self, line: bytes | bytearray) -> None:
        self._file.write(line)

    def close(self) -> None:
        self._file.close()
