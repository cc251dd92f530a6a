"""Carries out a trial's fault schedule against its backend, and keeps the record.

Times in the schedule are simulated seconds after the agreed start; the
injector turns them into wall-clock deadlines once the VMs are ready. Every
fault is recorded with its real start and end, in the manifest and as JSON
lines in the run's orchestrator.log.

A fault that cannot be carried out fails the trial: its error goes into the
fault's record, on the console (a warning Notice) and into the trial's error,
as FaultFailed. The end of a fault undoes only what its beginning did: a VM
whose kill failed is never started again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson
from msgspec.structs import replace

from orchestrator.backends import (
    HostCrashable,
    HostPartitionable,
    Killable,
    Partitionable,
    Pausable,
)
from orchestrator.errors import TrialError
from orchestrator.events import Level, Notice, Reporter, ignore
from orchestrator.faults import Fault
from vm_node.rundir import FaultRecord


class FaultFailed(TrialError):
    """A fault of the schedule could not be carried out: the trial fails."""


@dataclass(slots=True)
class _Step:
    when: float  # wall clock
    fault: Fault
    index: int
    begin: bool


class FaultInjector:
    def __init__(
        self,
        faults: tuple[Fault, ...],
        parts: tuple[object, ...],
        log: Path,
        report: Reporter = ignore,
    ) -> None:
        """`parts` (a backend's fault parts) offer the capabilities the schedule needs:
        backends.check_schedule made sure of it before the trial started."""
        self.faults = faults
        self.parts = parts
        self.log = log
        self.report = report
        self._records = [_scheduled(f) for f in faults]
        self._steps: list[_Step] = []
        self.down: set[int] = set()  # VMs killed and not yet restarted
        self._affected: dict[int, tuple[int, ...]] = {}  # VMs a begun fault stopped, by index

    @property
    def records(self) -> tuple[FaultRecord, ...]:
        """Every fault as scheduled, with its real start and end where it happened."""
        return tuple(self._records)

    def arm(self, start_at: float, time_scale: float) -> None:
        """Schedule every fault from the trial's agreed start."""
        for i, f in enumerate(self.faults):
            self._steps.append(_Step(start_at + f.at / time_scale, f, i, begin=True))
            self._steps.append(_Step(start_at + f.end / time_scale, f, i, begin=False))
        self._steps.sort(key=lambda s: (s.when, s.begin))  # an end before a begin at one time

    def next_due(self) -> float | None:
        return self._steps[0].when if self._steps else None

    def run_due(self, now: float | None = None) -> None:
        """Carry out every step due by `now`; FaultFailed where one cannot be."""
        now = time.time() if now is None else now
        while self._steps and self._steps[0].when <= now:
            step = self._steps.pop(0)
            if error := self._carry_out(step):
                raise FaultFailed(error)

    def finish(self) -> None:
        """The trial ended early: undo what would stop the VMs from stopping cleanly.
        Never raises (it runs before teardown): a failure is recorded and reported."""
        begun = {i for i, record in enumerate(self._records) if record.start is not None}
        for step in [s for s in self._steps if not s.begin and s.index in begun]:
            if step.fault.kind == "pause":
                self._carry_out(step)
        self._steps.clear()

    def _carry_out(self, step: _Step) -> str | None:
        """Stamp the step's time as it begins (a heal takes effect before it returns);
        where it fails, why, as recorded and reported."""
        f, i, when = step.fault, step.index, time.time()
        stamp = {"start": when} if step.begin else {"end": when}
        self._records[i] = replace(self._records[i], **stamp)
        line = {"event": "fault_begin" if step.begin else "fault_end", "timestamp": when}
        try:
            self._act(step)
            error = None
        except Exception as e:  # the trial fails, and says which fault and why
            said = f"{'begin' if step.begin else 'end'}: {e}"
            self._records[i] = replace(self._records[i], errors=(*self._records[i].errors, said))
            line["error"] = said
            error = f"faults[{i}] ({_name(f)}) failed to {'begin' if step.begin else 'end'}: {e}"
            self.report(Notice(error, Level.WARNING))
        with self.log.open("ab") as out:
            out.write(orjson.dumps(line | f.describe()) + b"\n")
        return error

    def _act(self, step: _Step) -> None:
        f, i = step.fault, step.index
        match (f.kind, step.begin):
            case ("kill", True):
                for vm in f.targets:
                    self._killable().kill(vm)
                    self._stopped(i, vm)
            case ("kill", False):
                for vm in self._affected.pop(i, ()):  # only what was killed
                    self._killable().restart(vm)
                    self.down.discard(vm)
            case ("pause", True):
                for vm in f.targets:
                    self._pausable().pause(vm)
                    self._affected[i] = (*self._affected.get(i, ()), vm)
            case ("pause", False):
                for vm in self._affected.pop(i, ()):
                    self._pausable().unpause(vm)
            case ("partition", True):
                self._partitionable().partition(f.groups)
            case ("partition", False):
                self._partitionable().heal()
            case ("host_partition", True):
                self._host_partitionable().cut_off_host(self._host(f))
            case ("host_partition", False):
                self._host_partitionable().reconnect_host(self._host(f))
            case ("host_crash", True):
                for vm in self._host_crashable().crash_host(self._host(f)):
                    self._stopped(i, vm)
            case ("host_crash", False):
                if i in self._affected:  # the host did go down
                    self._host_crashable().restart_host(self._host(f))
                    self.down.difference_update(self._affected.pop(i))
            case _:
                pass  # link conditions: the VMs apply them on their own clocks

    def _stopped(self, index: int, vm: int) -> None:
        self.down.add(vm)
        self._affected[index] = (*self._affected.get(index, ()), vm)

    # The schedule was checked against the parts before the trial started: one offers each.
    def _killable(self) -> Killable:
        return next(p for p in self.parts if isinstance(p, Killable))

    def _pausable(self) -> Pausable:
        return next(p for p in self.parts if isinstance(p, Pausable))

    def _partitionable(self) -> Partitionable:
        return next(p for p in self.parts if isinstance(p, Partitionable))

    def _host_partitionable(self) -> HostPartitionable:
        return next(p for p in self.parts if isinstance(p, HostPartitionable))

    def _host_crashable(self) -> HostCrashable:
        return next(p for p in self.parts if isinstance(p, HostCrashable))

    @staticmethod
    def _host(fault: Fault) -> int:
        assert fault.host is not None  # parse_faults gives every host fault its host
        return fault.host


def _name(f: Fault) -> str:
    """A fault as a console line names it: `kill vm1 at 8 s`."""
    what = " ".join(f"vm{vm}" for vm in f.targets)
    if f.groups:
        what = " | ".join(",".join(f"vm{vm}" for vm in g) for g in f.groups)
    if f.host is not None:
        what = f"host {f.host}"
    return f"{f.kind} {what} at {f.at:g} s".replace("  ", " ")


def _scheduled(f: Fault) -> FaultRecord:
    """A fault's record before it happens: as scheduled, without start or end."""
    return msgspec.convert(f.describe(), FaultRecord)
