"""Message accounting: every msg_id sent ends in one fate, each backed by a log line.

- received: a receive line carries it (even after a send_failed: the sender could
  not confirm delivery before its link was declared down, yet it arrived);
- failed: a send_failed line, and no receive;
- dropped: a loss condition's `fault` line on the sender;
- queued: in the receiver's inbox at a clean `stop`, whose queue_len says how many;
- lost: in the inbox of an incarnation that ended without a `stop` line (killed),
  at most what its last line's queue_len and the messages sent after it allow;
  or sent, as the receiver stopped, by a peer its stop line says never said bye;
  or, none of these, sent by an incarnation that ended without a `stop` line,
  too soon before its last line for its link to report it failed (sender.py);
- vanished: none of the above. That breaks the rules, as does an extra copy (a
  second receive, or a queue longer than what was sent) that no duplicate
  condition's `fault` line explains.

Which messages an inbox held at its end is inferred in inbox.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.check.fates import (
    DROPPED,
    FAILED,
    FATES,
    RECEIVED,
    UNDECIDED,
    Bools,
    Unexplained,
)
from analysis.check.inbox import Inboxes
from analysis.check.sender import lost_with_sender
from analysis.check.verdict import Rule
from analysis.columns import Codes, Ints, TrialLog
from analysis.offsets import Tolerance


@dataclass(frozen=True, slots=True)
class ReceiverAccount:
    vm: int
    sent_to: int
    received: int
    failed: int
    dropped: int
    queued: int  # in the inbox at a clean stop
    lost: int  # in the inbox of a crashed incarnation, or with its crashed sender
    vanished: int


@dataclass(frozen=True, slots=True)
class Accounting:
    sent: int  # msg_ids on send lines
    received: int
    failed: int
    failed_delivered: int  # send_failed, yet received or queued: the link died after delivery
    dropped: int
    queued: int
    lost: int
    vanished: int
    duplicated: int  # second copies a duplicate condition sent, received or queued
    unknown: int  # receives of msg_ids no send line carries
    receivers: tuple[ReceiverAccount, ...]
    unexplained: tuple[Unexplained, ...]

    @property
    def balanced(self) -> bool:
        """Every msg_id has exactly one fate backed by a line, and every extra copy a reason."""
        return not self.unexplained


@dataclass(frozen=True, slots=True)
class MessageFates:
    """One entry per sent message (an index into `trial.sends`)."""

    fate: Codes  # an index into FATES
    copies: Ints  # receive lines of its msg_id
    reported: Bools  # a send_failed line names it
    doubled: Bools  # a duplicate condition sent it twice
    duplicate_slots: int  # second copies that fill a queue at a stop
    unexplained: tuple[Unexplained, ...]


def message_fates(
    trial: TrialLog, *, skew: float | None = None, tolerance: Tolerance | None = None
) -> MessageFates:
    """Give every sent msg_id its fate; `skew` as in check_trial, or its `tolerance`."""
    sends, n = trial.sends, len(trial.sends)
    fate = np.full(n, UNDECIDED, dtype=np.int8)
    copies = np.bincount(trial.receive_send[trial.receive_send >= 0], minlength=n)
    reported = np.zeros(n, dtype=bool)
    reported[trial.failure_send[trial.failure_send >= 0]] = True
    dropped = np.zeros(n, dtype=bool)
    dropped[_sent_indices(trial, trial.drops.msg_id)] = True
    doubled = np.zeros(n, dtype=bool)
    doubled[_sent_indices(trial, trial.duplicates.msg_id)] = True
    fate[reported] = FAILED
    fate[dropped] = DROPPED
    fate[copies > 0] = RECEIVED
    unexplained = _extra_receives(trial, copies, doubled, dropped)
    sent_at = trial.lines.timestamp[sends.row]
    tolerance = tolerance or Tolerance.of(trial, skew)
    # the earliest a message may be in its inbox, as the receiver's clock reads
    earliest = sent_at - tolerance.per_message(trial.row_vm[sends.row], sends.peer)
    inboxes = Inboxes(trial, fate, copies, doubled.copy(), sent_at, earliest)
    none = np.zeros(0, dtype=np.int64)  # a trial with no VM has nothing waiting
    waiting = np.concatenate([none, *(inboxes.settle(vm) for vm in range(trial.vms))])
    for index in lost_with_sender(trial, fate, waiting, sent_at, inboxes.in_flight).tolist():
        inboxes.vanish(index)
    return MessageFates(
        fate=fate,
        copies=copies,
        reported=reported,
        doubled=doubled,
        duplicate_slots=inboxes.duplicate_slots,
        unexplained=tuple(unexplained + inboxes.unexplained),
    )


def account(trial: TrialLog, *, skew: float | None = None) -> Accounting:
    """The books of a trial: how many messages have each fate, per receiver and in all."""
    m = message_fates(trial, skew=skew)
    peer = trial.sends.peer
    receivers = tuple(
        ReceiverAccount(vm, int(np.count_nonzero(peer == vm)), *_tally(m.fate[peer == vm]))
        for vm in range(trial.vms)
    )
    received, failed, dropped, queued, lost, vanished = _tally(m.fate)
    return Accounting(
        sent=len(trial.sends),
        received=received,
        failed=failed,
        failed_delivered=int(np.count_nonzero(m.reported & (m.fate != FAILED))),
        dropped=dropped,
        queued=queued,
        lost=lost,
        vanished=vanished,
        duplicated=int(np.count_nonzero(m.doubled & (m.copies == 2))) + m.duplicate_slots,
        unknown=int(np.count_nonzero(trial.receive_send < 0)),
        receivers=receivers,
        unexplained=m.unexplained,
    )


def _tally(fate: Codes) -> tuple[int, ...]:
    """How many messages have each fate, in FATES order."""
    return tuple(int(n) for n in np.bincount(fate[fate >= 0], minlength=len(FATES)))


def _extra_receives(
    trial: TrialLog, copies: Ints, doubled: Bools, dropped: Bools
) -> list[Unexplained]:
    """Receives of a dropped message, and beyond a msg_id's first unless it was duplicated."""
    got = trial.receives.messages
    matched = np.flatnonzero(trial.receive_send >= 0)
    sent = trial.receive_send[matched]
    suspects = matched[dropped[sent] | (copies[sent] > 1)]  # most runs have none
    seen: set[int] = set()
    found = []
    for k in suspects.tolist():
        index = int(trial.receive_send[k])
        if dropped[index]:
            sender = trial.where(int(trial.sends.row[index]))
            why = f"received, but a loss condition dropped it ({sender})"
            found.append(Unexplained(Rule.SURPLUS, int(got.row[k]), f"{got.msg_id[k]} {why}"))
            continue
        if index not in seen:
            seen.add(index)
            continue
        if doubled[index] and copies[index] == 2:
            continue
        why = "more than two copies" if doubled[index] else "no duplicate condition sent it twice"
        found.append(
            Unexplained(Rule.SURPLUS, int(got.row[k]), f"{got.msg_id[k]} received again: {why}")
        )
    return found


def _sent_indices(trial: TrialLog, msg_ids: tuple[str, ...]) -> Ints:
    """Indices into `trial.sends` of these msg_ids (each once; unknown ones left out)."""
    if not msg_ids:
        return np.zeros(0, dtype=np.int64)
    index = {m: i for i, m in enumerate(trial.sends.msg_id)}
    return np.unique(np.array([index[m] for m in msg_ids if m in index], dtype=np.int64))
