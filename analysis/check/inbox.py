"""What an inbox held when its incarnation ended: queued at a clean stop, lost in a crash.

An inbox is only a length, so which messages it holds is inferred. It is FIFO,
so a queue holds the latest messages sent to it; a message older than those and
never received has no fate: it vanished. A clean stop's queue_len is exact, so
those are filled first; a crash only bounds its losses by the last line's
queue_len and the messages sent after that line. A stop that names peers whose
bye never came may also lose what those peers sent as it stopped.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.check.fates import FAILED, LOST, QUEUED, UNDECIDED, VANISHED, Bools, Unexplained
from analysis.check.verdict import Rule
from analysis.columns import PEER_DOWN, SEND_FAILED, Codes, Floats, Ints, LogFile, TrialLog

# A live VM reads its sockets between ticks, so by its last line a message sent this
# long (wall s) before it had reached its inbox, unless a delay condition held it back.
# It is the links' own patience: they declare a peer silent for 1.5 s down.
IN_FLIGHT = 1.5


class Inboxes:
    """Queued and lost messages, receiver by receiver; the rest have vanished."""

    def __init__(
        self,
        trial: TrialLog,
        fate: Codes,
        copies: Ints,
        doubled: Bools,
        sent_at: Floats,
        earliest: Floats,
    ) -> None:
        """`sent_at` as the sender's clock reads; `earliest` each message could be in its
        inbox, as the receiver's clock reads (the pair's tolerance taken off)."""
        self.trial, self.fate, self.copies, self.doubled = trial, fate, copies, doubled
        self.sent_at, self.earliest = sent_at, earliest
        self.unconfirmed = _unconfirmed(trial)
        self.in_flight = math.inf if _delays(trial) else IN_FLIGHT
        self.unexplained: list[Unexplained] = []
        self.duplicate_slots = 0

    def settle(self, vm: int) -> Ints:
        """Queue and lose what vm's inboxes held; returns the messages to it still undecided."""
        to_vm = np.flatnonzero(self.trial.sends.peer == vm)
        waiting: Ints = to_vm[self.fate[to_vm] == UNDECIDED]
        waiting = waiting[np.argsort(self.sent_at[waiting], kind="stable")]
        files = self._files(vm)
        for f in files:  # a clean stop says exactly how many wait: fill those first
            if f.stop_rows:
                waiting = self._queued_at_stop(f, to_vm, waiting)
        for i, f in enumerate(files):
            if not f.stop_rows:
                after = files[i + 1] if i + 1 < len(files) else None
                waiting = self._lost_in_crash(f, after, waiting)
        return waiting

    def vanish(self, index: int) -> None:
        """A message with no fate: a break in the books, named at its receiver's end."""
        self.fate[index] = VANISHED
        trial = self.trial
        vm = int(trial.sends.peer[index])
        files = self._files(vm)
        send = int(trial.sends.row[index])
        sent_at = self.sent_at[index]
        ends = [f.end_row - 1 for f in files]
        row = next(
            (r for r in ends if trial.lines.timestamp[r] >= sent_at), ends[-1] if ends else send
        )
        where = "stop" if any(row in f.stop_rows for f in files) else "last line"
        self.unexplained.append(
            Unexplained(
                Rule.VANISHED,
                row,
                f"{trial.sends.msg_id[index]} sent to vm{vm} ({trial.where(send)}) was never "
                f"received, failed or dropped, and this {where} (queue_len "
                f"{trial.lines.queue_len[row]}) leaves no room for it",
            )
        )

    def _files(self, vm: int) -> list[LogFile]:
        return [f for f in self.trial.files if f.vm == vm and f.end_row > f.first_row]

    def _queued_at_stop(self, f: LogFile, to_vm: Ints, waiting: Ints) -> Ints:
        row = f.stop_rows[-1]
        lines = self.trial.lines
        slots = int(lines.queue_len[row])
        could = waiting[self.earliest[waiting] <= lines.timestamp[row]]
        taken = could[max(len(could) - slots, 0) :] if slots else could[:0]
        self.fate[taken] = QUEUED
        waiting = np.setdiff1d(waiting, taken, assume_unique=True)
        if f.totals is not None and f.totals.missing_byes:
            waiting = self._lost_at_stop(row, f.totals.missing_byes, waiting)
        surplus = slots - len(taken)
        if surplus:
            surplus = self._fill(to_vm, lines.timestamp[row], surplus)
        if surplus:
            self.unexplained.append(
                Unexplained(
                    Rule.SURPLUS,
                    row,
                    f"stop says queue_len {slots}, but {surplus} more than the messages sent "
                    f"to vm{f.vm} that could still wait, and no duplicate condition explains them",
                )
            )
        return waiting

    def _lost_at_stop(self, row: int, silent: tuple[int, ...], waiting: Ints) -> Ints:
        """Messages from peers that never said bye, sent as the VM stopped: they may have
        arrived after its stop line, and went with the process."""
        stopped = self.trial.lines.timestamp[row]
        sent_at = self.sent_at[waiting]
        sender = self.trial.row_vm[self.trial.sends.row[waiting]]
        near = (sent_at > stopped - self.in_flight) & (
            self.earliest[waiting] <= stopped + IN_FLIGHT
        )
        taken = waiting[near & np.isin(sender, silent)]
        self.fate[taken] = LOST
        return np.setdiff1d(waiting, taken, assume_unique=True)

    def _fill(self, to_vm: Ints, until: float, surplus: int) -> int:
        """Queue slots beyond the waiting messages: a duplicate's second copy, or a message
        whose link went down before it was acknowledged, that arrived after all. Returns what
        stays unexplained."""
        early = to_vm[self.earliest[to_vm] <= until]
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
        could = waiting[self.earliest[waiting] <= ended]
        late = np.count_nonzero(self.sent_at[could] > lines.timestamp[last] - self.in_flight)
        room = int(lines.queue_len[last]) + int(late)
        taken = could[max(len(could) - room, 0) :]
        self.fate[taken] = LOST
        return np.setdiff1d(waiting, taken, assume_unique=True)


def _unconfirmed(trial: TrialLog) -> Bools:
    """Messages reported failed because their link went down unacknowledged: they may have
    arrived. The VM writes those send_failed lines right after its peer_down line; a send
    that was never written (not connected) follows its send line instead."""
    lines = trial.lines
    failed = trial.failures.row
    unconfirmed = np.zeros(len(trial.sends), dtype=bool)
    if not len(failed):
        return unconfirmed
    # each failure's cause: the last line before it that is not a send_failed (or row 0)
    others = np.flatnonzero(lines.event != SEND_FAILED)
    at = np.searchsorted(others, failed) - 1
    cause = np.zeros_like(failed)
    cause[at >= 0] = others[at[at >= 0]]
    after_down = (lines.event[cause] == PEER_DOWN) & (lines.file[cause] == lines.file[failed])
    known = trial.failure_send >= 0
    unconfirmed[trial.failure_send[known & after_down]] = True
    return unconfirmed


def _delays(trial: TrialLog) -> bool:
    """Whether a delay condition may have held messages back (then flight time is unbounded)."""
    network = trial.manifest.config.get("network") or []
    return any(c.get("kind") == "delay" for c in network if isinstance(c, dict)) or any(
        f.kind == "delay" for f in trial.manifest.faults
    )
