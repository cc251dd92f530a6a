"""Real-time scheduling for the ticks, where the machine allows it.

A VM sleeps nearly all the time. Under SCHED_RR at the lowest real-time
priority, when it wakes for a tick no ordinary process (another trial
starting, an analysis) can hold it off. It is claimed after start-up, so the
imports stay ordinary work, and given up when the ticks end: round-robin
among equal priorities hands over the CPU only every 100 ms, so a VM tearing
down at real-time priority would hold off the ticks of others.
"""

from __future__ import annotations

import os
import sys


def claim_realtime() -> bool:
    """Whether the kernel granted real-time scheduling; says why not on stderr."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except (OSError, AttributeError) as e:  # no CAP_SYS_NICE, no real-time budget, no Linux
        print(
            f"vm_node: real-time scheduling refused ({e}); ticking at normal priority",
            file=sys.stderr,
        )
        return False
    return True


def release_realtime() -> None:
    """Back to ordinary scheduling (always allowed)."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
