"""Time series of a trial in simulated seconds: each VM's ticks, and clocks on a common grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.columns import Codes, Floats, Ints, TrialLog, is_tick


@dataclass(frozen=True, slots=True)
class VmTrace:
    """One VM's tick lines, all incarnations, in time order."""

    vm: int
    rate: float
    time: Floats  # simulated seconds of true time: the VM's configured skew taken out
    tick: Ints
    timestamp: Floats  # the VM's own wall clock, skew included, for the achieved rate
    lamport: Ints
    queue: Ints
    event: Codes
    behind: Floats  # seconds late, 0 on ticks that ran on time
    jumps: Ints  # the jump of every receive
    incarnations: int


@dataclass(frozen=True, slots=True)
class FaultSpan:
    """A fault window in simulated seconds."""

    kind: str
    start: float
    end: float
    targets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TrialTraces:
    experiment: str
    trial: int
    duration: float  # simulated seconds covered by ticks
    vms: tuple[VmTrace, ...]
    grid: Floats  # simulated seconds
    clocks: Ints  # (vms, grid): each VM's Lamport clock at each grid time
    faults: tuple[FaultSpan, ...]

    @property
    def name(self) -> str:
        return f"{self.experiment}/trial-{self.trial}"

    @property
    def fastest(self) -> int:
        """The VM with the highest configured rate (the most ticks on a tie): drift's yardstick."""
        if not self.vms:
            return 0
        return max(self.vms, key=_speed).vm


def _speed(t: VmTrace) -> tuple[float, int, int]:
    return (-1.0 if np.isnan(t.rate) else t.rate, len(t.tick), -t.vm)


def _time_order(rows: Ints, timestamp: Floats) -> Ints | slice:
    """`rows` in time order (stable); a slice where they are consecutive already in order,
    the common case, so that the trace's columns are views rather than copies."""
    times = timestamp[rows]
    if not (times[1:] >= times[:-1]).all():
        return rows[np.argsort(times, kind="stable")]
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def traces(trial: TrialLog, points: int = 400) -> TrialTraces:
    """Every VM's trace and the clocks sampled on `points` times from 0 to the last tick."""
    lines = trial.lines
    row_vm = trial.row_vm
    ticked = is_tick(lines.event)
    receive_vm = row_vm[trial.receives.messages.row]
    vm_traces = []
    for vm in range(trial.vms):
        rows = _time_order(np.flatnonzero(ticked & (row_vm == vm)), lines.timestamp)
        vm_traces.append(
            VmTrace(
                vm=vm,
                rate=trial.rate(vm),
                # true time: the lags and drifts compare VMs at one moment, not at one reading
                time=trial.sim_time(lines.timestamp[rows] - trial.clock_offset(vm)),
                tick=lines.tick[rows],
                timestamp=lines.timestamp[rows],
                lamport=lines.lamport[rows],
                queue=lines.queue_len[rows],
                event=lines.event[rows],
                behind=lines.behind[rows],
                jumps=trial.receives.jump[receive_vm == vm],
                incarnations=sum(1 for f in trial.files if f.vm == vm),
            )
        )
    duration = max((float(t.time[-1]) for t in vm_traces if len(t.time)), default=0.0)
    grid = np.linspace(0.0, duration, points)
    clocks = np.zeros((trial.vms, points), dtype=np.int64)
    for t in vm_traces:
        at = np.searchsorted(t.time, grid, side="right") - 1
        clocks[t.vm] = np.where(at >= 0, t.lamport[np.maximum(at, 0)] if len(t.time) else 0, 0)
    faults = tuple(
        FaultSpan(
            f.kind,
            float(trial.sim_time(np.array([f.start]))[0]),
            float(trial.sim_time(np.array([f.end]))[0]),
            f.targets,
        )
        for f in trial.manifest.faults
        if f.start is not None and f.end is not None  # a fault never carried out has no window
    )
    return TrialTraces(
        experiment=trial.manifest.experiment,
        trial=trial.manifest.trial,
        duration=duration,
        vms=tuple(vm_traces),
        grid=grid,
        clocks=clocks,
        faults=faults,
    )
