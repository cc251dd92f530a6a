"""Message accounting: every msg_id sent ends in one fate, each backed by a log line.

- received: a receive line carries it (even after a send_failed: the sender could
  not confirm delivery before its link was declared down, yet it arrived);
- failed: a send_failed line, and no receive;
- dropped: a loss condition's `fault` line on the sender;
- queued: in the receiver's inbox at a clean `stop`, whose queue_len says how many;
- lost: in the inbox of an incarnation that ended without a `stop` line (killed),
  at most what its last line's queue_len and the messages sent after it allow;
- vanished: none of the above. That breaks the rules, as does an extra copy (a
  second receive, or a queue longer than what was sent) that no duplicate
  condition's `fault` line explains.

An inbox is only a length, so which messages it holds is inferred: it is FIFO,
so a queue holds the latest messages sent to it; a message older than those and
never received has no fate. Clean stops are exact and are filled first; crashes
only bound their losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from analysis.load.columns import PEER_DOWN, SEND_FAILED, Codes, Floats, Ints, LogFile, TrialLog

Bools: TypeAlias = npt.NDArray[np.bool_]

# A message reaches an inbox this long (wall s) after its send line at most, unless a
# delay condition holds it: the link declares a peer down after 1.5 s of silence.
IN_FLIGHT = 1.5


class Fate(StrEnum):
    RECEIVED = "received"
    FAILED = "failed"
    DROPPED = "dropped"
    QUEUED = "queued"
    LOST = "lost"  # in a crashed incarnation's inbox
    VANISHED = "vanished"


FATES: tuple[Fate, ...] = tuple(Fate)
RECEIVED, FAILED, DROPPED, QUEUED, LOST, VANISHED = range(len(FATES))
UNDECIDED = -1


@dataclass(frozen=True, slots=True)
class Unexplained:
    """A break in the books: `row` is the line where the evidence fails."""

    kind: str  # "vanished" (a msg_id with no fate) or "surplus" (a copy nothing explains)
    row: int
    detail: str


@dataclass(frozen=True, slots=True)
class ReceiverAccount:
    vm: int
    sent_to: int
    received: int
    failed: int
    dropped: int
    queued: int  # in the inbox at a clean stop
    lost: int  # in the inbox of a crashed incarnation
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
    unexplained: tuple[Unexplained, ...] = field(default=())

    @property
    def balanced(self) -> bool:
        """Every msg_id has exactly one fate backed by a line, and every extra copy a reason."""
        return not self.unexplained


def account(trial: TrialLog, *, skew: float = 0.0) -> Accounting:
    """Give every sent msg_id its fate; `skew` as in check_trial."""
    sends, n = trial.sends, len(trial.sends)
    fate = np.full(n, UNDECIDED, dtype=np.int8)
    matched = trial.receive_send[trial.receive_send >= 0]
    copies = np.bincount(matched, minlength=n)
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
    received_twice = int(np.count_nonzero(doubled & (copies == 2)))
    sent_at = trial.lines.timestamp[sends.row]
    books = _Books(trial, fate, copies, doubled, sent_at, skew)
    for vm in range(trial.vms):
        books.settle(vm)
    unexplained += books.unexplained
    receivers = tuple(
        ReceiverAccount(
            vm, int(np.count_nonzero(sends.peer == vm)), *_tally(fate[sends.peer == vm])
        )
        for vm in range(trial.vms)
    )
    received, failed, dropped_n, queued, lost, vanished = _tally(fate)
    return Accounting(
        sent=n,
        received=received,
        failed=failed,
        failed_delivered=int(np.count_nonzero(reported & (fate != FAILED))),
        dropped=dropped_n,
        queued=queued,
        lost=lost,
        vanished=vanished,
        duplicated=received_twice + books.duplicate_slots,
        unknown=int(np.count_nonzero(trial.receive_send < 0)),
        receivers=receivers,
        unexplained=tuple(unexplained),
    )


def _tally(fate: Codes) -> tuple[int, ...]:
    """How many messages have each fate, in FATES order."""
    return tuple(int(n) for n in np.bincount(fate[fate >= 0], minlength=len(FATES)))


def _extra_receives(
    trial: TrialLog, copies: Ints, doubled: Bools, dropped: Bools
) -> list[Unexplained]:
    """Receives of a dropped message, and beyond a msg_id's first unless it was duplicated."""
    got = trial.receives.messages
    seen: set[int] = set()
    found = []
    for k in np.flatnonzero(trial.receive_send >= 0).tolist():
        index = int(trial.receive_send[k])
        if dropped[index]:
            sender = trial.where(int(trial.sends.row[index]))
            why = f"received, but a loss condition dropped it ({sender})"
            found.append(Unexplained("surplus", int(got.row[k]), f"{got.msg_id[k]} {why}"))
        elif index not in seen:
            seen.add(index)
            continue
        if doubled[index] and copies[index] == 2:
            continue
        why = "more than two copies" if doubled[index] else "no duplicate condition sent it twice"
        found.append(
            Unexplained("surplus", int(got.row[k]), f"{got.msg_id[k]} received again: {why}")
        )
    return found


class _Books:
    """Queued and lost messages, receiver by receiver; the rest have vanished."""

    def __init__(
        self,
        trial: TrialLog,
        fate: Codes,
        copies: Ints,
        doubled: Bools,
        sent_at: Floats,
        skew: float,
    ) -> None:
        self.trial, self.fate, self.copies, self.doubled = trial, fate, copies, doubled
        self.sent_at, self.skew = sent_at, skew
        self.unconfirmed = _unconfirmed(trial)
        self.in_flight = math.inf if _delays(trial) else IN_FLIGHT
        self.unexplained: list[Unexplained] = []
        self.duplicate_slots = 0

    def settle(self, vm: int) -> None:
        files = [f for f in self.trial.files if f.vm == vm and f.end_row > f.first_row]
        to_vm = np.flatnonzero(self.trial.sends.peer == vm)
        waiting = to_vm[self.fate[to_vm] == UNDECIDED]
        waiting = waiting[np.argsort(self.sent_at[waiting], kind="stable")]
        for f in files:  # a clean stop says exactly how many wait: fill those first
            if f.stop_rows:
                waiting = self._queued_at_stop(f, to_vm, waiting)
        for i, f in enumerate(files):
            if not f.stop_rows:
                after = files[i + 1] if i + 1 < len(files) else None
                waiting = self._lost_in_crash(f, after, waiting)
        for index in waiting.tolist():
            self._vanished(vm, files, index)

    def _queued_at_stop(self, f: LogFile, to_vm: Ints, waiting: Ints) -> Ints:
        row = f.stop_rows[-1]
        lines = self.trial.lines
        slots = int(lines.queue_len[row])
        could = waiting[self.sent_at[waiting] <= lines.timestamp[row] + self.skew]
        taken = could[len(could) - slots :] if slots else could[:0]
        self.fate[taken] = QUEUED
        surplus = slots - len(taken)
        if surplus:
            surplus = self._fill(to_vm, lines.timestamp[row], surplus)
        if surplus:
            self.unexplained.append(
                Unexplained(
                    "surplus",
                    row,
                    f"stop says queue_len {slots}, but {surplus} more than the messages sent "
                    f"to vm{f.vm} that could still wait, and no duplicate condition explains them",
                )
            )
        return np.setdiff1d(waiting, taken, assume_unique=True)

    def _fill(self, to_vm: Ints, until: float, surplus: int) -> int:
        """Queue slots beyond the waiting messages: a duplicate's second copy, or a message
        whose link went down before it was acknowledged, that arrived after all. Returns what
        stays unexplained."""
        early = to_vm[self.sent_at[to_vm] <= until + self.skew]
        spare = early[self.doubled[early] & (self.copies[early] < 2)]
        used = min(surplus, len(spare))
        self.doubled[spare[:used]] = False  # each second copy fills one slot
        self.duplicate_slots += used
        surplus -= used
        failed = early[(self.fate[early] == FAILED) & self.unconfirmed[early]][::-1]  # latest first
        used = min(surplus, len(failed))
        self.fate[failed[:used]] = QUEUED
        return surplus - used

    def _lost_in_crash(self, f: LogFile, after: LogFile | None, waiting: Ints) -> Ints:
        lines = self.trial.lines
        last = f.end_row - 1
        ended = math.inf if after is None else float(lines.timestamp[after.first_row])
        could = waiting[self.sent_at[waiting] <= ended + self.skew]
        late = np.count_nonzero(self.sent_at[could] > lines.timestamp[last] - self.in_flight)
        room = int(lines.queue_len[last]) + int(late)
        taken = could[max(len(could) - room, 0) :]
        self.fate[taken] = LOST
        return np.setdiff1d(waiting, taken, assume_unique=True)

    def _vanished(self, vm: int, files: list[LogFile], index: int) -> None:
        self.fate[index] = VANISHED
        trial = self.trial
        send = int(trial.sends.row[index])
        sent_at = self.sent_at[index]
        ends = [f.end_row - 1 for f in files]
        row = next(
            (r for r in ends if trial.lines.timestamp[r] >= sent_at), ends[-1] if ends else send
        )
        where = "stop" if any(row in f.stop_rows for f in files) else "last line"
        self.unexplained.append(
            Unexplained(
                "vanished",
                row,
                f"{trial.sends.msg_id[index]} sent to vm{vm} ({trial.where(send)}) was never "
                f"received, failed or dropped, and this {where} (queue_len "
                f"{trial.lines.queue_len[row]}) leaves no room for it",
            )
        )


def _unconfirmed(trial: TrialLog) -> Bools:
    """Messages reported failed because their link went down unacknowledged: they may have
    arrived. The VM writes those send_failed lines right after its peer_down line; a send
    that was never written (not connected) follows its send line instead."""
    lines = trial.lines
    rows = np.arange(len(lines))
    before = np.maximum.accumulate(np.where(lines.event != SEND_FAILED, rows, 0))
    failed = trial.failures.row
    cause = before[failed] if len(lines) else failed
    after_down = (lines.event[cause] == PEER_DOWN) & (lines.file[cause] == lines.file[failed])
    unconfirmed = np.zeros(len(trial.sends), dtype=bool)
    known = trial.failure_send >= 0
    unconfirmed[trial.failure_send[known & after_down]] = True
    return unconfirmed


def _delays(trial: TrialLog) -> bool:
    """Whether a delay condition may have held messages back (then flight time is unbounded)."""
    network = trial.manifest.config.get("network") or []
    return any(c.get("kind") == "delay" for c in network if isinstance(c, dict)) or any(
        f.kind == "delay" for f in trial.manifest.faults
    )


def _sent_indices(trial: TrialLog, msg_ids: tuple[str, ...]) -> Ints:
    """Indices into `trial.sends` of these msg_ids (each once; unknown ones left out)."""
    index = {m: i for i, m in enumerate(trial.sends.msg_id)}
    return np.unique(np.array([index[m] for m in msg_ids if m in index], dtype=np.int64))
