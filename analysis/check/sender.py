"""What a crashed sender took with it: messages still on the wire when it died.

A link that hears nothing from its peer for IN_FLIGHT seconds is declared down,
and its unacknowledged messages get `send_failed` lines. An incarnation killed
sooner than that after a send never writes them, so a message it sent within
IN_FLIGHT of its last line, over a link that was already dead, may have died
with it. An older message would have been reported: if it is missing, it has
vanished. Only messages no receiver's inbox accounts for are judged here.
"""

from __future__ import annotations

import numpy as np

from analysis.check.fates import LOST
from analysis.columns import Codes, Floats, Ints, TrialLog


def lost_with_sender(
    trial: TrialLog, fate: Codes, waiting: Ints, sent_at: Floats, in_flight: float
) -> Ints:
    """Give the `waiting` messages a crashed sender took with it their fate (LOST);
    returns the rest. `in_flight` is inbox.IN_FLIGHT, or inf under a delay condition."""
    if not len(waiting):
        return waiting
    files = trial.files
    crashed = np.array([not f.stop_rows and f.end_row > f.first_row for f in files], dtype=bool)
    last_at = trial.lines.timestamp[np.array([max(f.end_row - 1, 0) for f in files])]
    file = trial.lines.file[trial.sends.row[waiting]]
    # the sender's own clock on both sides of the comparison: no skew between them
    taken = crashed[file] & (sent_at[waiting] >= last_at[file] - in_flight)
    fate[waiting[taken]] = LOST
    rest: Ints = waiting[~taken]
    return rest
