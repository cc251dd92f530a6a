"""Vector clocks recomputed from a trace, and checked against what the VMs logged.

The rule is vm_node/clock.py's: an internal event or a send adds one to the
VM's own entry; a receive takes the elementwise larger of its own vector and
the message's, then adds one to its own entry. A receive whose send is not in
the logs carries nothing known and steps as a local event, so the check flags it.
"""

from __future__ import annotations

import numpy as np

from analysis.clocks.figures import Figures
from analysis.clocks.trace import Mismatch, Trace
from analysis.columns import Ints, TrialLog


def recompute(trace: Trace) -> Ints:
    """Each event's vector clock after the event, shape (events, vms)."""
    values = np.zeros((len(trace), trace.vms), dtype=np.int64)
    clock = np.zeros((trace.vms, trace.vms), dtype=np.int64)  # each VM's current vector
    vm, source, receive = trace.vm.tolist(), trace.source.tolist(), trace.receive.tolist()
    for i in trace.order.tolist():
        v = vm[i]
        if receive[i] and source[i] >= 0:
            np.maximum(clock[v], values[source[i]], out=clock[v])
        clock[v, v] += 1
        values[i] = clock[v]
    return values


def happened_before(vectors: Ints, a: Ints, b: Ints) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """For each pair, whether event a[k] happened before event b[k]."""
    va, vb = vectors[a], vectors[b]
    result: np.ndarray[tuple[int], np.dtype[np.bool_]] = np.all(va <= vb, axis=1) & np.any(
        va < vb, axis=1
    )
    return result


def mismatches(trial: TrialLog, trace: Trace | None = None) -> list[Mismatch]:
    """Every tick line whose logged vector clock differs from the recomputed one."""
    trace = trace or Trace.from_trial(trial)
    recomputed = recompute(trace)
    logged = trial.lines.vc[trace.rows]
    wrong = np.flatnonzero(np.any(logged != recomputed, axis=1))
    return [
        Mismatch(
            trial.where(int(trace.rows[i])), str(logged[i].tolist()), str(recomputed[i].tolist())
        )
        for i in wrong
    ]


def figures(trial: TrialLog, trace: Trace) -> Figures:
    wrong = np.any(trial.lines.vc[trace.rows] != recompute(trace), axis=1)
    return Figures.per_vm(
        trace, {"vector mismatches": wrong.astype(np.float64)}, {"vector mismatches": "sum"}
    )
