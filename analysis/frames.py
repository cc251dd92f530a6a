"""A trial as polars DataFrames, for notebooks: one row per log line, one per message.

    from analysis import load_run
    run = load_run("runs/original/trial-1")
    run.events      # one row per readable log line
    run.messages    # one row per msg_id sent, with its fate
    run.events.to_pandas()   # where pandas is installed

The frames are built from the same columns the checker reads, so they agree
with `clocklab check` line for line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from analysis.check.accounting import message_fates
from analysis.check.fates import FATES
from analysis.columns import EVENTS, TrialLog
from analysis.load.runs import load_trial
from vm_node.rundir import Manifest

EVENT = pl.Enum([e.value for e in EVENTS])
FATE = pl.Enum([f.value for f in FATES])


@dataclass(frozen=True, slots=True)
class Run:
    """One trial directory, loaded."""

    path: Path
    manifest: Manifest
    events: pl.DataFrame
    messages: pl.DataFrame
    quarantined: pl.DataFrame  # file, line and reason of every line that could not be read


def load_run(path: str | Path) -> Run:
    """Load a trial directory (`runs/<experiment>/trial-<n>`) into DataFrames."""
    trial = load_trial(Path(path))
    return Run(
        path=trial.path,
        manifest=trial.manifest,
        events=events(trial),
        messages=messages(trial),
        quarantined=pl.DataFrame(
            {
                "file": [str(q.path) for q in trial.quarantined],
                "line": [q.line for q in trial.quarantined],
                "reason": [q.reason for q in trial.quarantined],
            },
            schema={"file": pl.String, "line": pl.Int64, "reason": pl.String},
        ),
    )


def events(trial: TrialLog) -> pl.DataFrame:
    """Every readable line: where it is, what happened, the clocks and the queue."""
    lines, files = trial.lines, trial.files
    file_names = np.array([str(f.path) for f in files], dtype=object)
    incarnations = np.array([f.incarnation for f in files], dtype=np.int64)
    names = np.array([e.value for e in EVENTS], dtype=object)
    return pl.DataFrame(
        {
            "file": pl.Series(file_names[lines.file], dtype=pl.String),
            "line": lines.line,
            "vm": trial.row_vm,
            "incarnation": incarnations[lines.file],
            "seq": lines.seq,
            "event": pl.Series(names[lines.event], dtype=EVENT),
            "timestamp": lines.timestamp,
            "time": trial.sim_time(lines.timestamp),  # simulated seconds since the start
            "lamport": lines.lamport,
            "vc": pl.Series(lines.vc, dtype=pl.Array(pl.Int64, trial.vms)),
            "queue_len": lines.queue_len,
            "tick": pl.Series(lines.tick).replace(-1, None),
            "behind_s": lines.behind,
        }
    )


def messages(trial: TrialLog, *, skew: float | None = None) -> pl.DataFrame:
    """Every msg_id sent: who sent it to whom, when, and what became of it."""
    sends, lines = trial.sends, trial.lines
    fates = message_fates(trial, skew=skew)
    known = np.flatnonzero(trial.receive_send >= 0)
    sent, position = np.unique(trial.receive_send[known], return_index=True)
    first = known[position]  # the first receive of each received message
    received_by = np.full(len(sends), -1, dtype=np.int64)
    received_at = np.full(len(sends), np.nan)
    jump = np.full(len(sends), -1, dtype=np.int64)
    rows = trial.receives.messages.row[first]
    received_by[sent], received_at[sent] = trial.row_vm[rows], lines.timestamp[rows]
    jump[sent] = trial.receives.jump[first]
    fate_names = np.array([f.value for f in FATES], dtype=object)
    return pl.DataFrame(
        {
            "msg_id": pl.Series(sends.msg_id, dtype=pl.String),
            "sender": trial.row_vm[sends.row],
            "receiver": sends.peer,
            "sent_at": lines.timestamp[sends.row],
            "send_line": [trial.where(int(row)) for row in sends.row],
            "fate": pl.Series(fate_names[fates.fate], dtype=FATE),
            "receives": fates.copies,
            "received_by": pl.Series(received_by).replace(-1, None),
            "received_at": pl.Series(received_at).fill_nan(None),
            "jump": pl.Series(jump).replace(-1, None),
            "send_failed": fates.reported,
            "duplicated": fates.doubled,
        }
    )
