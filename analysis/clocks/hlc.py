"""The Hybrid Logical Clock (Kulkarni et al., 2014), run on each VM's own wall clock.

An HLC is a pair (l, c): l follows the largest physical time the VM has
heard of, its own or a message's, and c counts events while l stands still.
It keeps l >= pt, and l - pt stays within how far the VMs' physical clocks
disagree. Physical time `pt` is the line's timestamp, skew included, in whole
microseconds so that the rule's equalities are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.clocks.figures import Figures
from analysis.clocks.trace import Trace
from analysis.columns import Floats, Ints, TrialLog

MICROSECONDS = 1_000_000


@dataclass(frozen=True, slots=True)
class Hlc:
    """Each event's HLC after the event, and the physical time it was computed from."""

    l: Ints  # noqa: E741 - the paper's name; microseconds
    c: Ints
    pt: Ints  # microseconds

    @property
    def lead(self) -> Floats:
        """l - pt in seconds: how far ahead of the VM's own physical clock the HLC reads."""
        result: Floats = (self.l - self.pt) / MICROSECONDS
        return result


def recompute(trace: Trace) -> Hlc:
    pt = np.round(trace.timestamp * MICROSECONDS).astype(np.int64)
    clock_l, clock_c = [0] * trace.vms, [0] * trace.vms
    values_l, values_c = [0] * len(trace), [0] * len(trace)
    vm, source, receive = trace.vm.tolist(), trace.source.tolist(), trace.receive.tolist()
    pts = pt.tolist()
    for i in trace.order.tolist():
        v, own_l, own_c = vm[i], clock_l[vm[i]], clock_c[vm[i]]
        if receive[i] and source[i] >= 0:
            msg_l, msg_c = values_l[source[i]], values_c[source[i]]
            new_l = max(own_l, msg_l, pts[i])
            if new_l == own_l == msg_l:
                new_c = max(own_c, msg_c) + 1
            elif new_l == own_l:
                new_c = own_c + 1
            elif new_l == msg_l:
                new_c = msg_c + 1
            else:
                new_c = 0
        else:  # a local event or a send; a receive whose send is unknown carries nothing
            new_l = max(own_l, pts[i])
            new_c = own_c + 1 if new_l == own_l else 0
        clock_l[v], clock_c[v] = values_l[i], values_c[i] = new_l, new_c
    return Hlc(np.array(values_l, np.int64), np.array(values_c, np.int64), pt)


def figures(trial: TrialLog, trace: Trace) -> Figures:
    hlc = recompute(trace)
    return Figures.per_vm(
        trace,
        {"hlc l−pt max (s)": hlc.lead, "hlc c max": hlc.c.astype(np.float64)},
        {"hlc l−pt max (s)": "max", "hlc c max": "max"},
    )
