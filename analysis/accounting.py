"""Message accounting: where every msg_id that was sent ended up.

Which queued message is which cannot be known (an inbox is only a length),
so the balance is kept per receiver: what was sent to it, minus what it
received and what failed, should be what its inbox still held at the end.
A shortfall is lost (a crashed incarnation's inbox, or the network); a
surplus is duplicates waiting in the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.model import Ints, TrialLog


@dataclass(frozen=True, slots=True)
class ReceiverAccount:
    vm: int
    sent_to: int
    received: int  # distinct msg_ids taken from the inbox
    failed: int
    queued: int  # left in the inbox when its incarnations stopped
    lost: int
    surplus: int  # queued beyond what could still be waiting: duplicates


@dataclass(frozen=True, slots=True)
class Accounting:
    sent: int  # msg_ids on send lines
    received: int  # distinct sent msg_ids received
    failed: int
    queued: int
    lost: int
    duplicated: int  # receives beyond the first of a msg_id, and queued duplicates
    unknown: int  # receives of msg_ids no send line carries
    receivers: tuple[ReceiverAccount, ...]

    @property
    def balanced(self) -> bool:
        """Every msg_id sent is received, failed, still queued or lost, exactly once."""
        surplus = sum(r.surplus for r in self.receivers)
        return self.sent == self.received + self.failed + self.queued - surplus + self.lost


def account(trial: TrialLog) -> Accounting:
    sends, received = trial.sends, trial.receives.messages
    row_vm = trial.row_vm
    matched = trial.receive_send >= 0
    sent, first = np.unique(trial.receive_send[matched], return_index=True)
    first_receiver = row_vm[received.row[matched][first]]
    failed = np.unique(trial.failure_send[trial.failure_send >= 0])

    def per_vm(vms: Ints) -> Ints:
        return np.bincount(vms[(vms >= 0) & (vms < trial.vms)], minlength=trial.vms)

    sent_to, received_by, failed_to = (
        per_vm(sends.peer),
        per_vm(first_receiver),
        per_vm(sends.peer[failed]),
    )
    receivers = []
    for vm in range(trial.vms):
        queued = sum(f.totals.queue_len for f in trial.files if f.vm == vm and f.totals is not None)
        rest = int(sent_to[vm] - received_by[vm] - failed_to[vm]) - queued
        receivers.append(
            ReceiverAccount(
                vm=vm,
                sent_to=int(sent_to[vm]),
                received=int(received_by[vm]),
                failed=int(failed_to[vm]),
                queued=queued,
                lost=max(rest, 0),
                surplus=max(-rest, 0),
            )
        )
    return Accounting(
        sent=len(sends),
        received=len(sent),
        failed=len(failed),
        queued=sum(r.queued for r in receivers),
        lost=sum(r.lost for r in receivers),
        duplicated=int(np.count_nonzero(matched)) - len(sent) + sum(r.surplus for r in receivers),
        unknown=int(np.count_nonzero(~matched)),
        receivers=tuple(receivers),
    )
