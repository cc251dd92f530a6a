"""Message accounting: where every msg_id that was sent ended up.

Which queued message is which cannot be known (an inbox is only a length),
so the balance is kept per receiver: what was sent to it, minus what it
received and what failed, should be what its inbox still held at the end.
A shortfall is lost (a crashed incarnation's inbox, or the network); a
surplus is duplicates waiting in the inbox.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from analysis.model import TrialLog


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
    sends, received, failures = trial.sends, trial.receives.messages, trial.failures
    row_vm = trial.row_vm
    sent_ids = set(sends.msg_id)
    counts = Counter(received.msg_id)
    known = {m: n for m, n in counts.items() if m in sent_ids}
    extra_receives = sum(n - 1 for n in known.values())
    unknown = sum(n for m, n in counts.items() if m not in sent_ids)
    first_receiver: dict[str, int] = {}
    for msg_id, row in zip(received.msg_id, received.row.tolist(), strict=True):
        if msg_id in known:
            first_receiver.setdefault(msg_id, int(row_vm[row]))
    received_by = Counter(first_receiver.values())
    failed_ids = {
        m: int(to) for m, to in zip(failures.msg_id, failures.peer, strict=True) if m in sent_ids
    }
    failed_to = Counter(failed_ids.values())
    sent_to = np.bincount(
        sends.peer[(sends.peer >= 0) & (sends.peer < trial.vms)], minlength=trial.vms
    )
    receivers = []
    for vm in range(trial.vms):
        queued = sum(f.totals.queue_len for f in trial.files if f.vm == vm and f.totals is not None)
        rest = int(sent_to[vm]) - received_by[vm] - failed_to[vm] - queued
        receivers.append(
            ReceiverAccount(
                vm=vm,
                sent_to=int(sent_to[vm]),
                received=received_by[vm],
                failed=failed_to[vm],
                queued=queued,
                lost=max(rest, 0),
                surplus=max(-rest, 0),
            )
        )
    return Accounting(
        sent=len(sends),
        received=len(known),
        failed=len(failed_ids),
        queued=sum(r.queued for r in receivers),
        lost=sum(r.lost for r in receivers),
        duplicated=extra_receives + sum(r.surplus for r in receivers),
        unknown=unknown,
        receivers=tuple(receivers),
    )
