"""A window of a trial for the space-time (Lamport) diagram: events and messages.

A diagram of every event stops being readable past a few hundred, so it shows
a window in simulated time that holds about `events` tick events; choosing the
window costs one binary search, whatever the size of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.columns import Codes, Floats, Ints, TrialLog, is_tick


@dataclass(frozen=True, slots=True)
class SpaceTimeWindow:
    name: str
    vms: int
    start: float  # simulated seconds
    end: float
    vm: Ints  # one entry per tick event in the window
    time: Floats
    lamport: Ints
    event: Codes
    arrow_from: Ints  # indices into the events above, one per message inside the window
    arrow_to: Ints


def space_time_window(
    trial: TrialLog, events: int = 60, start: float | None = None
) -> SpaceTimeWindow:
    """About `events` tick events from `start` (default: a quarter into the run)."""
    lines = trial.lines
    rows = np.flatnonzero(is_tick(lines.event))
    rows = rows[np.argsort(lines.timestamp[rows], kind="stable")]
    time = trial.sim_time(lines.timestamp[rows])
    if start is None:
        start = float(time[len(time) // 4]) if len(time) else 0.0
    first = int(np.searchsorted(time, start))
    chosen = rows[first : first + events]
    end = float(time[min(first + events, len(time)) - 1]) if len(chosen) else start
    position = {int(row): i for i, row in enumerate(chosen)}
    arrow_from, arrow_to = [], []
    received = trial.receives.messages
    inside = np.flatnonzero(np.isin(received.row, chosen) & (trial.receive_send >= 0))
    sent_rows = trial.sends.row[trial.receive_send[inside]]
    for i, sent in zip(inside.tolist(), sent_rows.tolist(), strict=True):
        if sent in position:
            arrow_from.append(position[sent])
            arrow_to.append(position[int(received.row[i])])
    return SpaceTimeWindow(
        name=trial.name,
        vms=trial.vms,
        start=start,
        end=end,
        vm=trial.row_vm[chosen],
        time=trial.sim_time(lines.timestamp[chosen]),
        lamport=lines.lamport[chosen],
        event=lines.event[chosen],
        arrow_from=np.array(arrow_from, dtype=np.int64),
        arrow_to=np.array(arrow_to, dtype=np.int64),
    )
