"""Export a trial to ShiViz (https://bestchai.bitbucket.io/shiviz/).

A ShiViz log file starts with its parser regular expression and a blank
multiple-executions delimiter, then two lines per event: a description, and
`host {"host": n, ...}` with the vector clock. Only tick events are written:
those are exactly the events that advance a VM's own vector entry by one, as
ShiViz requires. Zero entries are left out of the clocks.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TextIO

import numpy as np
import orjson

from analysis.columns import RECEIVE, SEND, TrialLog, is_tick

REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"


def write_shiviz(trial: TrialLog, path: Path) -> int:
    """Write the ShiViz log to `path`; return how many events it holds."""
    with path.open("w", encoding="utf-8") as out:
        return export(trial, out)


def export(trial: TrialLog, out: TextIO) -> int:
    lines = trial.lines
    rows = np.flatnonzero(is_tick(lines.event))
    rows = rows[np.argsort(lines.timestamp[rows], kind="stable")]
    row_vm = trial.row_vm
    hosts = [f"vm{j}" for j in range(trial.vms)]
    sent: defaultdict[int, list[str]] = defaultdict(list)
    for row, to, msg_id in zip(
        trial.sends.row.tolist(), trial.sends.peer.tolist(), trial.sends.msg_id, strict=True
    ):
        sent[row].append(f"{msg_id} to vm{to}")
    got = trial.receives.messages
    received = {
        row: f"receive {msg_id} from vm{sender} (jump {jump})"
        for row, sender, msg_id, jump in zip(
            got.row.tolist(),
            got.peer.tolist(),
            got.msg_id,
            trial.receives.jump.tolist(),
            strict=True,
        )
    }
    out.write(REGEX + "\n\n")
    for row in rows.tolist():
        code = lines.event[row]
        if code == RECEIVE:
            what = received[row]
        elif code == SEND:
            what = "send " + ", ".join(sent[row])
        else:
            what = "internal"
        clock = {hosts[j]: int(n) for j, n in enumerate(lines.vc[row]) if n}
        out.write(
            f"{what} · tick {lines.tick[row]}, lamport {lines.lamport[row]}\n"
            f"{hosts[row_vm[row]]} {orjson.dumps(clock).decode()}\n"
        )
    return len(rows)
