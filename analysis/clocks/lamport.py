"""Lamport clocks recomputed from a trace, and checked against what the VMs logged.

The rule is vm_node/clock.py's: an internal event or a send adds one; a
receive takes the larger of its own clock and the message's, then adds one.
A receive whose send is not in the logs carries nothing known and steps as a
local event, so the check flags it.
"""

from __future__ import annotations

import numpy as np

from analysis.clocks.figures import Figures
from analysis.clocks.trace import Mismatch, Trace
from analysis.columns import Floats, Ints, TrialLog


def recompute(trace: Trace) -> Ints:
    """Each event's Lamport clock after the event."""
    clock = [0] * trace.vms
    values = [0] * len(trace)
    vm, source, receive = trace.vm.tolist(), trace.source.tolist(), trace.receive.tolist()
    for i in trace.order.tolist():
        v = vm[i]
        msg = values[source[i]] if receive[i] and source[i] >= 0 else 0
        clock[v] = max(clock[v], msg) + 1
        values[i] = clock[v]
    return np.array(values, dtype=np.int64)


def mismatches(trial: TrialLog, trace: Trace | None = None) -> list[Mismatch]:
    """Every tick line whose logged Lamport clock differs from the recomputed one."""
    trace = trace or Trace.from_trial(trial)
    recomputed = recompute(trace)
    logged = trial.lines.lamport[trace.rows]
    return [
        Mismatch(trial.where(int(trace.rows[i])), str(logged[i]), str(recomputed[i]))
        for i in np.flatnonzero(logged != recomputed)
    ]


def lead(trace: Trace, values: Ints) -> Floats:
    """Per event, wall seconds the Lamport clock is ahead of the VM's own count of ticks.

    The clock read as a clock ticking at the VM's rate: what messages pushed it
    beyond the VM's own events, in the time the VM needs to tick that many times.
    """
    lead_ticks = (values - trace.own_count()).astype(np.float64)
    result: Floats = lead_ticks / trace.wall_rate[trace.vm]
    return result


def figures(trial: TrialLog, trace: Trace) -> Figures:
    values = recompute(trace)
    logged = trial.lines.lamport[trace.rows]
    return Figures.per_vm(
        trace,
        {
            "lamport lead max (s)": lead(trace, values),
            "lamport mismatches": (values != logged).astype(np.float64),
        },
        {"lamport lead max (s)": "max", "lamport mismatches": "sum"},
    )
