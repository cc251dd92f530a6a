"""Message accounting: where every msg_id that was sent ended up.

Which queued message is which cannot be known (an inbox is only a length),
so the balance is kept per receiver: what was sent to it, minus what it
received, what failed and what a loss condition dropped, should be what its
inbox still held at the end. A shortfall is lost in flight (a crashed
incarnation's inbox); a surplus is duplicates waiting in the inbox.

`send_failed` means the sender could not confirm delivery: a message sent
just before its link was declared down may still have arrived. Such a
message counts as received (and is counted apart), never twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.load.columns import Ints, TrialLog


@dataclass(frozen=True, slots=True)
class ReceiverAccount:
    vm: int
    sent_to: int
    received: int  # distinct msg_ids taken from the inbox
    failed: int  # send_failed and never received
    dropped: int  # thrown away by a loss condition (`fault` lines)
    queued: int  # left in the inbox when its incarnations stopped
    lost: int  # in flight or in the inbox of an incarnation that crashed
    surplus: int  # queued beyond what could still be waiting: duplicates


@dataclass(frozen=True, slots=True)
class Accounting:
    sent: int  # msg_ids on send lines
    received: int  # distinct sent msg_ids received
    failed: int  # send_failed and never received
    failed_delivered: int  # send_failed, yet received: the link died after delivery
    dropped: int  # lost to a loss condition, on purpose
    queued: int
    lost: int
    duplicated: int  # receives beyond the first of a msg_id, and queued duplicates
    unknown: int  # receives of msg_ids no send line carries
    receivers: tuple[ReceiverAccount, ...]

    @property
    def balanced(self) -> bool:
        """Every msg_id sent is received, failed, dropped, still queued or lost, exactly once."""
        surplus = sum(r.surplus for r in self.receivers)
        accounted = self.received + self.failed + self.dropped + self.queued - surplus + self.lost
        return self.sent == accounted


def account(trial: TrialLog) -> Accounting:
    sends, received = trial.sends, trial.receives.messages
    row_vm = trial.row_vm
    matched = trial.receive_send >= 0
    sent, first = np.unique(trial.receive_send[matched], return_index=True)
    first_receiver = row_vm[received.row[matched][first]]
    reported = np.unique(trial.failure_send[trial.failure_send >= 0])
    failed = np.setdiff1d(reported, sent)  # a failure report of a delivered message is moot
    dropped = _sent_indices(trial, trial.drops.msg_id)

    def per_vm(vms: Ints) -> Ints:
        return np.bincount(vms[(vms >= 0) & (vms < trial.vms)], minlength=trial.vms)

    sent_to, received_by, failed_to, dropped_to = (
        per_vm(sends.peer),
        per_vm(first_receiver),
        per_vm(sends.peer[failed]),
        per_vm(sends.peer[dropped]),
    )
    receivers = []
    for vm in range(trial.vms):
        queued = sum(f.totals.queue_len for f in trial.files if f.vm == vm and f.totals is not None)
        rest = int(sent_to[vm] - received_by[vm] - failed_to[vm] - dropped_to[vm]) - queued
        receivers.append(
            ReceiverAccount(
                vm=vm,
                sent_to=int(sent_to[vm]),
                received=int(received_by[vm]),
                failed=int(failed_to[vm]),
                dropped=int(dropped_to[vm]),
                queued=queued,
                lost=max(rest, 0),
                surplus=max(-rest, 0),
            )
        )
    return Accounting(
        sent=len(sends),
        received=len(sent),
        failed=len(failed),
        failed_delivered=len(reported) - len(failed),
        dropped=len(dropped),
        queued=sum(r.queued for r in receivers),
        lost=sum(r.lost for r in receivers),
        duplicated=int(np.count_nonzero(matched)) - len(sent) + sum(r.surplus for r in receivers),
        unknown=int(np.count_nonzero(~matched)),
        receivers=tuple(receivers),
    )


def _sent_indices(trial: TrialLog, msg_ids: tuple[str, ...]) -> Ints:
    """Indices into `trial.sends` of these msg_ids (each once; unknown ones left out)."""
    index = {m: i for i, m in enumerate(trial.sends.msg_id)}
    return np.unique(np.array([index[m] for m in msg_ids if m in index], dtype=np.int64))
