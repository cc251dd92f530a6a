"""A trial as a clock algorithm sees it: each VM's events in order, and the message edges.

A VM's sends and receives never depend on its clock values, so every clock
algorithm can be run on a recorded trial and gives exactly what it would have
given live. Events are the trial's tick lines (`internal`, `send`, `receive`)
in row order, so each VM's events are one contiguous slice, its incarnations
one after the other: a restarted VM resumes its clocks, and so do the clocks here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.columns import RECEIVE, Floats, Ints, TrialLog, is_tick
from analysis.errors import AnalysisError


class ClockError(AnalysisError):
    """A trial whose message edges no clock can follow."""


@dataclass(frozen=True, slots=True)
class Trace:
    """The events of one trial; arrays are aligned with its tick lines."""

    vms: int
    rows: Ints  # each event's row in the trial's lines
    vm: Ints
    receive: np.ndarray[tuple[int], np.dtype[np.bool_]]
    source: Ints  # for a receive, the event that sent its message; -1 otherwise or unknown
    timestamp: Floats  # the VM's own wall clock, skew included
    order: Ints  # every event once, each after its VM's earlier events and its source
    wall_rate: Floats  # per VM: configured ticks per wall second (nan when unknown)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_trial(cls, trial: TrialLog) -> Trace:
        lines = trial.lines
        rows = np.flatnonzero(is_tick(lines.event)).astype(np.int64)
        vm = trial.row_vm[rows]
        event_of_row = np.full(len(lines), -1, dtype=np.int64)
        event_of_row[rows] = np.arange(len(rows))
        source = np.full(len(rows), -1, dtype=np.int64)
        matched = trial.receive_send >= 0
        receivers = event_of_row[trial.receives.messages.row[matched]]
        source[receivers] = event_of_row[trial.sends.row[trial.receive_send[matched]]]
        wall_rate = np.array(
            [trial.rate(v) * trial.time_scale for v in range(trial.vms)], dtype=np.float64
        )
        return cls(
            vms=trial.vms,
            rows=rows,
            vm=vm,
            receive=lines.event[rows] == RECEIVE,
            source=source,
            timestamp=lines.timestamp[rows],
            order=_causal_order(trial, vm, source),
            wall_rate=wall_rate,
        )

    def vm_slices(self) -> list[slice]:
        """Each VM's events, in its own order."""
        bounds = np.searchsorted(self.vm, np.arange(self.vms + 1))
        return [slice(int(bounds[v]), int(bounds[v + 1])) for v in range(self.vms)]

    def own_count(self) -> Ints:
        """How many events the event's VM had had, this one included."""
        count = np.empty(len(self), dtype=np.int64)
        for s in self.vm_slices():
            count[s] = np.arange(1, s.stop - s.start + 1)
        return count


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A tick line whose logged clock is not the one the rules give."""

    where: str  # path:line
    logged: str
    recomputed: str

    def __str__(self) -> str:
        return f"{self.where}: logged {self.logged}, recomputed {self.recomputed}"


def _causal_order(trial: TrialLog, vm: Ints, source: Ints) -> Ints:
    """Each VM's events in turn, as far as each can go before waiting on another's send."""
    bounds = np.searchsorted(vm, np.arange(trial.vms + 1))
    next_event = [int(b) for b in bounds[:-1]]
    ends = [int(b) for b in bounds[1:]]
    done = np.zeros(len(vm), dtype=np.bool_)
    order: list[int] = []
    source_list = source.tolist()
    while len(order) < len(vm):
        progressed = False
        for v in range(trial.vms):
            i = next_event[v]
            while i < ends[v] and (source_list[i] < 0 or done[source_list[i]]):
                done[i] = True
                order.append(i)
                i += 1
            progressed |= i != next_event[v]
            next_event[v] = i
        if not progressed:
            rows = np.flatnonzero(is_tick(trial.lines.event))
            stuck = [i for v, i in enumerate(next_event) if i < ends[v]]
            where = ", ".join(trial.where(int(rows[i])) for i in stuck)
            raise ClockError(
                f"no causal order: the receives at {where} each wait on a send that comes "
                "later; the logs' message edges form a cycle, see `clocklab check`"
            )
    return np.array(order, dtype=np.int64)
