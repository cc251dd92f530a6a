"""Checks across VMs: every message matched to its send, its clocks and its route."""

from __future__ import annotations

from collections import Counter

import numpy as np

from analysis.check.verdict import Findings, Rule, event_name, vc_text
from analysis.columns import RECEIVE, Ints, TrialLog, is_tick
from analysis.offsets import Tolerance
from vm_node.rundir import log_name


def check_messages(trial: TrialLog, found: Findings, tolerance: Tolerance) -> None:
    """Sends, receives and failures against each other; a receive may be logged before its
    send by the `tolerance` of the two VMs' clocks."""
    lines, sends, receives, failures = trial.lines, trial.sends, trial.receives, trial.failures
    vm = trial.row_vm
    again = trial.repeated_sends
    found.add(
        Rule.DUPLICATE_SEND,
        sends.row[again],
        lambda k: f"msg_id {sends.msg_id[again[k]]} was sent before",
    )

    got = receives.messages
    match = trial.receive_send
    _unknown(trial, found, got.row, got.msg_id, match, "receive")
    known = np.flatnonzero(match >= 0)
    received, sent = got.row[known], sends.row[match[known]]

    wrong = np.flatnonzero(sends.peer[match[known]] != vm[received])
    found.add(
        Rule.MISROUTED,
        received[wrong],
        lambda k: (
            f"vm{vm[received[wrong[k]]]} received {got.msg_id[known[wrong[k]]]}, "
            f"sent to vm{sends.peer[match[known[wrong[k]]]]} ({trial.where(int(sent[wrong[k]]))})"
        ),
    )
    wrong = np.flatnonzero(got.peer[known] != vm[sent])
    found.add(
        Rule.MISROUTED,
        received[wrong],
        lambda k: (
            f"receive says {got.msg_id[known[wrong[k]]]} came from vm{got.peer[known[wrong[k]]]}, "
            f"but vm{vm[sent[wrong[k]]]} sent it ({trial.where(int(sent[wrong[k]]))})"
        ),
    )
    carried = receives.msg_lamport[known]
    wrong = np.flatnonzero(carried != lines.lamport[sent])
    found.add(
        Rule.MESSAGE_CLOCK,
        received[wrong],
        lambda k: (
            f"receive of {got.msg_id[known[wrong[k]]]} says msg_lamport {carried[wrong[k]]}, its "
            f"send ({trial.where(int(sent[wrong[k]]))}) has lamport {lines.lamport[sent[wrong[k]]]}"
        ),
    )
    early = lines.timestamp[sent] - lines.timestamp[received]
    wrong = np.flatnonzero(early > tolerance.per_message(vm[sent], vm[received]))
    found.add(
        Rule.SEND_BEFORE_RECEIVE,
        received[wrong],
        lambda k: (
            f"received {got.msg_id[known[wrong[k]]]} {early[wrong[k]]:.6f} s before its send "
            f"({trial.where(int(sent[wrong[k]]))}), "
            + tolerance.exceeded(int(vm[sent[wrong[k]]]), int(vm[received[wrong[k]]]))
        ),
    )
    receiver = vm[received]
    below = lines.vc[sent, receiver] < lines.vc[received, receiver]
    for entry in range(lines.vc.shape[1]):  # a column at a time: numpy reduces short rows slowly
        below &= lines.vc[sent, entry] <= lines.vc[received, entry]
    wrong = np.flatnonzero(~below)
    found.add(
        Rule.HAPPENED_BEFORE,
        received[wrong],
        lambda k: (
            f"vc {vc_text(lines.vc[received[wrong[k]]])} does not follow its send's "
            f"{vc_text(lines.vc[sent[wrong[k]]])} ({trial.where(int(sent[wrong[k]]))})"
        ),
    )
    _check_vector_steps(trial, found, vm, received, sent)

    failed = trial.failure_send
    _unknown(trial, found, failures.row, failures.msg_id, failed, "send_failed")
    ok = np.flatnonzero(failed >= 0)
    wrong = ok[sends.peer[failed[ok]] != failures.peer[ok]]
    found.add(
        Rule.MISROUTED,
        failures.row[wrong],
        lambda k: (
            f"send_failed of {failures.msg_id[wrong[k]]} to vm{failures.peer[wrong[k]]}, "
            f"but it was sent to vm{sends.peer[failed[wrong[k]]]}"
        ),
    )
    # A send_failed whose message was received is legal: the sender could not confirm
    # delivery before its link was declared down (see analysis.check.accounting).


def _unknown(
    trial: TrialLog, found: Findings, rows: Ints, msg_ids: tuple[str, ...], match: Ints, what: str
) -> None:
    """Messages no send line carries: a violation, unless the sender's log is incomplete."""
    complete = {(f.vm, f.incarnation) for f in trial.files if f.complete}
    bad: list[int] = []
    missing: Counter[str] = Counter()
    for i in np.flatnonzero(match < 0):
        origin = _origin(msg_ids[i])
        if origin is not None and origin not in complete:
            vm, incarnation = origin
            missing[log_name(vm, incarnation)] += 1
        else:
            bad.append(int(i))
    for name, n in missing.items():
        found.incomplete.append(
            f"{n} {what} line(s) name messages from {name}, which is missing or incomplete"
        )
    found.add(
        Rule.UNKNOWN_MESSAGE,
        rows[bad],
        lambda k: f"{what} of {msg_ids[bad[k]]}, which no send line carries",
    )


def _origin(msg_id: str) -> tuple[int, int] | None:
    parts = msg_id.split("-")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])


def _check_vector_steps(
    trial: TrialLog, found: Findings, vm: Ints, received: Ints, sent: Ints
) -> None:
    """Each vector clock from the line before it, and from the message for receives.

    One VM's entry at a time: each expected column is as long as the trial.
    """
    lines = trial.lines
    n = len(lines)
    if n < 2:
        return
    follows = (lines.file[1:] == lines.file[:-1]) & (lines.line[1:] == lines.line[:-1] + 1)
    inbound = received > 0
    merged, carried = received[inbound] - 1, sent[inbound]  # row before a receive, its send
    ticked, after = is_tick(lines.event[1:]), vm[1:]
    differs = np.zeros(n - 1, dtype=bool)
    for own in range(lines.vc.shape[1]):
        expected = lines.vc[:-1, own].copy()
        expected[merged] = np.maximum(expected[merged], lines.vc[carried, own])
        expected += ticked & (after == own)
        differs |= lines.vc[1:, own] != expected
    judged = follows.copy()
    receive = lines.event[1:] == RECEIVE
    unmatched = receive.copy()
    unmatched[merged] = False
    judged &= ~unmatched  # a receive of an unknown message is reported as such
    wrong = judged & differs
    for rule, mask in ((Rule.VC_STEP, wrong & ~receive), (Rule.VC_MERGE, wrong & receive)):
        rows = np.flatnonzero(mask) + 1
        for row in rows[: found.keep].tolist():
            found.one(
                rule,
                row,
                f"{event_name(trial, row)} sets vc {vc_text(lines.vc[row])} after "
                f"{vc_text(lines.vc[row - 1])}; expected "
                f"{vc_text(_expected_vc(trial, vm, row, merged, carried, bool(ticked[row - 1])))}",
            )
        if len(rows) > found.keep:
            found.counts[rule] += len(rows) - found.keep


def _expected_vc(
    trial: TrialLog, vm: Ints, row: int, merged: Ints, carried: Ints, ticked: bool
) -> Ints:
    """The vector clock `row` should have, as _check_vector_steps computes it a column at a time."""
    vc = trial.lines.vc
    expected: Ints = vc[row - 1].copy()
    at = np.flatnonzero(merged == row - 1)
    if len(at):
        np.maximum(expected, vc[carried[at[-1]]], out=expected)
    if ticked:
        expected[vm[row]] += 1
    return expected
