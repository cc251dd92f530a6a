"""The checker: are a trial's clocks exactly what the rules say, line by line?

Every rule is checked on whole columns at once. A line whose predecessor was
quarantined is not judged against it; the verdict is then at best unknown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from analysis.model import EVENTS, INTERNAL, RECEIVE, SEND, TICK_CODES, Ints, TrialLog
from vm_node.events import CLOCK_LIMIT


class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"

    @property
    def exit_code(self) -> int:
        return {Verdict.VALID: 0, Verdict.INVALID: 1, Verdict.UNKNOWN: 2}[self]

    @classmethod
    def worst(cls, verdicts: list[Verdict]) -> Verdict:
        """Invalid beats unknown beats valid."""
        for verdict in (cls.INVALID, cls.UNKNOWN):
            if verdict in verdicts:
                return verdict
        return cls.VALID


class Rule(StrEnum):
    """What a counter-example breaks; the value is its name in output."""

    STRUCTURE = "structure"
    SEQ = "seq"
    TICK = "tick"
    CLOCK_RANGE = "clock_range"
    START_CLOCKS = "start_clocks"
    LAMPORT_STEP = "lamport_step"
    RECEIVE_RULE = "receive_rule"
    JUMP = "jump"
    MESSAGE_CLOCK = "message_clock"
    UNKNOWN_MESSAGE = "unknown_message"
    DUPLICATE_SEND = "duplicate_send"
    MISROUTED = "misrouted"
    FAILED_RECEIVED = "failed_received"
    SEND_BEFORE_RECEIVE = "send_before_receive"
    VC_STEP = "vc_step"
    VC_MERGE = "vc_merge"
    VC_LAMPORT = "vc_lamport"
    HAPPENED_BEFORE = "happened_before"
    TOTALS = "totals"


RULES: dict[Rule, str] = {
    Rule.STRUCTURE: "a log begins with `start` and ends with `stop`",
    Rule.SEQ: "seq counts a file's lines from 0",
    Rule.TICK: "tick indices count 0, 1, 2, ... one per tick line",
    Rule.CLOCK_RANGE: "clocks lie in [0, 2^53)",
    Rule.START_CLOCKS: "a VM starts at zero clocks; a restart resumes where it stopped",
    Rule.LAMPORT_STEP: "internal and send add 1 to the Lamport clock; other non-tick lines keep it",
    Rule.RECEIVE_RULE: "receive sets lamport = max(local, message) + 1",
    Rule.JUMP: "a receive's jump is its clock after minus before",
    Rule.MESSAGE_CLOCK: "a received message carries its send line's Lamport clock",
    Rule.UNKNOWN_MESSAGE: "every received or failed msg_id was sent",
    Rule.DUPLICATE_SEND: "a msg_id is sent once",
    Rule.MISROUTED: "a message is received by the VM it was sent to, from its sender",
    Rule.FAILED_RECEIVED: "a message whose send failed is never received",
    Rule.SEND_BEFORE_RECEIVE: "a message is sent (wall clock) before it is received",
    Rule.VC_STEP: "internal and send add 1 to the VM's own vector entry; other lines keep it",
    Rule.VC_MERGE: "receive sets vc = max(local, message) then adds 1 to its own entry",
    Rule.VC_LAMPORT: "max(vc) <= lamport <= sum(vc)",
    Rule.HAPPENED_BEFORE: "a send's vector clock is below its receive's",
    Rule.TOTALS: "the stop line's totals match the lines",
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: Rule
    where: str  # path:line
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    trial: str
    path: Path
    verdict: Verdict
    counts: tuple[tuple[Rule, int], ...]  # violations per rule, most first
    examples: tuple[Violation, ...]
    incomplete: tuple[str, ...]  # why the logs cannot be fully judged
    lines: int
    messages: int

    @property
    def violations(self) -> int:
        return sum(n for _, n in self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "path": str(self.path),
            "verdict": self.verdict.value,
            "violations": {rule.value: n for rule, n in self.counts},
            "examples": [
                {"rule": v.rule.value, "where": v.where, "detail": v.detail} for v in self.examples
            ],
            "incomplete": list(self.incomplete),
            "lines": self.lines,
            "messages": self.messages,
        }


class _Findings:
    """Counts every violation; words only the first few of each rule."""

    def __init__(self, trial: TrialLog, keep: int) -> None:
        self.trial = trial
        self.keep = keep
        self.counts: Counter[Rule] = Counter()
        self.examples: list[Violation] = []
        self.incomplete: list[str] = []

    def one(self, rule: Rule, row: int, detail: str) -> None:
        self.counts[rule] += 1
        if sum(v.rule is rule for v in self.examples) < self.keep:
            self.examples.append(Violation(rule, self.trial.where(row), detail))

    def add(self, rule: Rule, rows: Ints, describe: Callable[[int], str]) -> None:
        """`rows` are the offending lines; `describe(k)` words the k-th."""
        if not len(rows):
            return
        self.counts[rule] += len(rows)
        for k in range(min(self.keep, len(rows))):
            self.examples.append(Violation(rule, self.trial.where(int(rows[k])), describe(k)))


def check_trial(trial: TrialLog, *, skew: float = 0.0, keep: int = 5) -> CheckResult:
    """Judge one trial; `skew` is how far (s) wall clocks of different hosts may disagree."""
    found = _Findings(trial, keep)
    found.incomplete += trial.problems
    if trial.quarantined_count:
        first = trial.quarantined[0]
        found.incomplete.append(f"{trial.quarantined_count} unreadable line(s), first {first}")
    if not len(trial.lines):
        found.incomplete.append("no readable log line")
    _check_structure(trial, found)
    _check_steps(trial, found)
    _check_messages(trial, found, skew)
    if not trial.quarantined_count:
        _check_totals(trial, found)
    if found.counts:
        verdict = Verdict.INVALID
    elif found.incomplete:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.VALID
    return CheckResult(
        trial=trial.name,
        path=trial.path,
        verdict=verdict,
        counts=tuple(found.counts.most_common()),
        examples=tuple(found.examples),
        incomplete=tuple(found.incomplete),
        lines=len(trial.lines),
        messages=len(trial.sends),
    )


def _check_structure(trial: TrialLog, found: _Findings) -> None:
    lines = trial.lines
    last_incarnation = {f.vm: f.incarnation for f in trial.files}
    previous = None
    for f in trial.files:
        if f.end_row == f.first_row:
            continue
        first = f.first_row
        if not f.start_rows:
            found.incomplete.append(f"{f.path}: no start line")
        for row in f.start_rows:
            if row != first:
                found.one(Rule.STRUCTURE, row, "a start line after the first line")
        if not f.stop_rows and f.incarnation == last_incarnation[f.vm]:
            # an earlier incarnation without one was killed and restarted: that is expected
            found.incomplete.append(f"{f.path}: no stop line (the VM was killed or still runs)")
        for row in f.stop_rows:
            if row != f.end_row - 1:
                found.one(Rule.STRUCTURE, row, "more lines follow this stop line")
        if f.start_rows[:1] == (first,):
            restarted = previous is not None and (previous.vm, previous.incarnation + 1) == (
                f.vm,
                f.incarnation,
            )
            before = previous.end_row - 1 if previous is not None and restarted else None
            _check_start_clocks(trial, found, first, before)
        if lines.seq[first] != lines.line[first] - 1:
            found.one(Rule.SEQ, first, f"seq {lines.seq[first]} on line {lines.line[first]}")
        previous = f
    out_of_range = (lines.lamport < 0) | (lines.lamport >= CLOCK_LIMIT)
    out_of_range |= ((lines.vc < 0) | (lines.vc >= CLOCK_LIMIT)).any(axis=1)
    rows = np.flatnonzero(out_of_range)
    found.add(
        Rule.CLOCK_RANGE,
        rows,
        lambda k: f"lamport {lines.lamport[rows[k]]}, vc {_vc(lines.vc[rows[k]])}",
    )
    vc_max, vc_sum = lines.vc.max(axis=1, initial=0), lines.vc.sum(axis=1)
    rows = np.flatnonzero((lines.lamport < vc_max) | (lines.lamport > vc_sum))
    found.add(
        Rule.VC_LAMPORT,
        rows,
        lambda k: (
            f"lamport {lines.lamport[rows[k]]} outside [max(vc), sum(vc)] = "
            f"[{vc_max[rows[k]]}, {vc_sum[rows[k]]}]"
        ),
    )


def _check_start_clocks(trial: TrialLog, found: _Findings, row: int, before: int | None) -> None:
    """Zero clocks on a first start; a restart's start repeats the last line before it."""
    lines = trial.lines
    clocks = f"lamport {lines.lamport[row]}, vc {_vc(lines.vc[row])}"
    if trial.files[lines.file[row]].incarnation == 0:
        if lines.lamport[row] != 0 or lines.vc[row].any():
            found.one(Rule.START_CLOCKS, row, f"the first incarnation starts at {clocks}")
    elif before is not None:
        same = (
            lines.lamport[row] == lines.lamport[before]
            and (lines.vc[row] == lines.vc[before]).all()
        )
        if not same:
            found.one(
                Rule.START_CLOCKS,
                row,
                f"restarts at {clocks}, but {trial.where(before)} ended at lamport "
                f"{lines.lamport[before]}, vc {_vc(lines.vc[before])}",
            )


def _check_steps(trial: TrialLog, found: _Findings) -> None:
    """Each line against the one before it in the same file."""
    lines = trial.lines
    n = len(lines)
    if n < 2:
        return
    same = lines.file[1:] == lines.file[:-1]
    follows = same & (lines.line[1:] == lines.line[:-1] + 1)  # nothing quarantined between

    seq_gap = lines.seq[1:] - lines.seq[:-1]
    rows = np.flatnonzero(same & (seq_gap != lines.line[1:] - lines.line[:-1])) + 1
    found.add(
        Rule.SEQ, rows, lambda k: f"seq {lines.seq[rows[k]]} follows {lines.seq[rows[k] - 1]}"
    )

    _check_ticks(trial, found)

    event = lines.event[1:]
    step = (event == INTERNAL) | (event == SEND)
    receive = event == RECEIVE
    before, after = lines.lamport[:-1], lines.lamport[1:]
    msg_lamport = np.zeros(n, dtype=np.int64)
    msg_lamport[trial.receives.messages.row] = trial.receives.msg_lamport
    merged = np.maximum(before, msg_lamport[1:]) + 1
    expected = np.where(step, before + 1, np.where(receive, merged, before))
    wrong = follows & (after != expected)
    rows = np.flatnonzero(wrong & ~receive) + 1
    found.add(
        Rule.LAMPORT_STEP,
        rows,
        lambda k: (
            f"{_event(trial, rows[k])} sets lamport {lines.lamport[rows[k]]} after "
            f"{lines.lamport[rows[k] - 1]}; expected {expected[rows[k] - 1]}"
        ),
    )
    rows = np.flatnonzero(wrong & receive) + 1
    found.add(
        Rule.RECEIVE_RULE,
        rows,
        lambda k: (
            f"receive sets lamport {lines.lamport[rows[k]]}, but max(local "
            f"{lines.lamport[rows[k] - 1]}, message {msg_lamport[rows[k]]}) + 1 "
            f"= {expected[rows[k] - 1]}"
        ),
    )

    receives = trial.receives
    judged = receives.messages.row[receives.messages.row > 0]
    judged_jump = receives.jump[receives.messages.row > 0]
    keep = follows[judged - 1]
    judged, judged_jump = judged[keep], judged_jump[keep]
    actual = lines.lamport[judged] - lines.lamport[judged - 1]
    bad = np.flatnonzero(judged_jump != actual)
    found.add(
        Rule.JUMP,
        judged[bad],
        lambda k: (
            f"jump {judged_jump[bad[k]]}, but the clock went from "
            f"{lines.lamport[judged[bad[k]] - 1]} to {lines.lamport[judged[bad[k]]]}"
        ),
    )


def _check_ticks(trial: TrialLog, found: _Findings) -> None:
    """Tick indices count up by one within a file; a first incarnation starts at tick 0."""
    lines = trial.lines
    rows = np.flatnonzero(np.isin(lines.event, TICK_CODES))
    ticks = lines.tick[rows]
    same = lines.file[rows[1:]] == lines.file[rows[:-1]]
    unbroken = (lines.line[rows[1:]] - lines.line[rows[:-1]]) == (rows[1:] - rows[:-1])
    bad = np.flatnonzero(same & unbroken & (ticks[1:] != ticks[:-1] + 1)) + 1
    found.add(
        Rule.TICK, rows[bad], lambda k: f"tick {ticks[bad[k]]} follows tick {ticks[bad[k] - 1]}"
    )
    for f in trial.files:
        i = int(np.searchsorted(rows, f.first_row))
        if f.incarnation or i == len(rows) or rows[i] >= f.end_row:
            continue
        row = int(rows[i])
        if lines.line[row] == row - f.first_row + 1 and ticks[i] != 0:
            found.one(Rule.TICK, row, f"the first tick is {ticks[i]}, not 0")


def _check_messages(trial: TrialLog, found: _Findings, skew: float) -> None:
    lines, sends, receives, failures = trial.lines, trial.sends, trial.receives, trial.failures
    vm = trial.row_vm
    if len(set(sends.msg_id)) < len(sends):
        again = _repeated(sends.msg_id)
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
    wrong = np.flatnonzero(early > skew)
    found.add(
        Rule.SEND_BEFORE_RECEIVE,
        received[wrong],
        lambda k: (
            f"received {got.msg_id[known[wrong[k]]]} {early[wrong[k]]:.6f} s before its send "
            f"({trial.where(int(sent[wrong[k]]))})"
        ),
    )
    own = lines.vc[received, vm[received]]
    below = (lines.vc[sent] <= lines.vc[received]).all(axis=1) & (
        lines.vc[sent, vm[received]] < own
    )
    wrong = np.flatnonzero(~below)
    found.add(
        Rule.HAPPENED_BEFORE,
        received[wrong],
        lambda k: (
            f"vc {_vc(lines.vc[received[wrong[k]]])} does not follow its send's "
            f"{_vc(lines.vc[sent[wrong[k]]])} ({trial.where(int(sent[wrong[k]]))})"
        ),
    )
    _check_vector_steps(trial, found, received, sent)

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
    both = set(failures.msg_id) & set(got.msg_id)
    rows = np.array(
        sorted(int(got.row[i]) for i, m in enumerate(got.msg_id) if m in both), dtype=np.int64
    )
    found.add(Rule.FAILED_RECEIVED, rows, lambda k: "received a message whose send failed")


def _repeated(msg_ids: tuple[str, ...]) -> list[int]:
    """Indices of the msg_ids seen earlier in the sequence."""
    seen: set[str] = set()
    again = []
    for i, msg_id in enumerate(msg_ids):
        if msg_id in seen:
            again.append(i)
        seen.add(msg_id)
    return again


def _unknown(
    trial: TrialLog, found: _Findings, rows: Ints, msg_ids: tuple[str, ...], match: Ints, what: str
) -> None:
    """Messages no send line carries: a violation, unless the sender's log is missing."""
    present = {(f.vm, f.incarnation) for f in trial.files}
    bad: list[int] = []
    missing: Counter[str] = Counter()
    for i in np.flatnonzero(match < 0):
        origin = _origin(msg_ids[i])
        if origin is not None and origin not in present:
            vm, incarnation = origin
            missing[f"vm{vm}.jsonl" if incarnation == 0 else f"vm{vm}.{incarnation}.jsonl"] += 1
        else:
            bad.append(int(i))
    for name, n in missing.items():
        found.incomplete.append(f"{n} {what} line(s) name messages from {name}, which is missing")
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


def _check_vector_steps(trial: TrialLog, found: _Findings, received: Ints, sent: Ints) -> None:
    """Each vector clock from the line before it, and from the message for receives."""
    lines = trial.lines
    n = len(lines)
    if n < 2:
        return
    vm = trial.row_vm
    follows = (lines.file[1:] == lines.file[:-1]) & (lines.line[1:] == lines.line[:-1] + 1)
    expected = lines.vc[:-1].copy()
    inbound = received > 0
    expected[received[inbound] - 1] = np.maximum(
        expected[received[inbound] - 1], lines.vc[sent[inbound]]
    )
    ticked = np.flatnonzero(np.isin(lines.event[1:], TICK_CODES))
    expected[ticked, vm[ticked + 1]] += 1
    judged = follows.copy()
    receive = lines.event[1:] == RECEIVE
    unmatched = receive.copy()
    unmatched[received[inbound] - 1] = False
    judged &= ~unmatched  # a receive of an unknown message is reported as such
    wrong = judged & (lines.vc[1:] != expected).any(axis=1)
    for rule, mask in ((Rule.VC_STEP, wrong & ~receive), (Rule.VC_MERGE, wrong & receive)):
        rows = np.flatnonzero(mask) + 1
        for row in rows[: found.keep].tolist():
            found.one(
                rule,
                row,
                f"{_event(trial, row)} sets vc {_vc(lines.vc[row])} after "
                f"{_vc(lines.vc[row - 1])}; expected {_vc(expected[row - 1])}",
            )
        if len(rows) > found.keep:
            found.counts[rule] += len(rows) - found.keep


def _check_totals(trial: TrialLog, found: _Findings) -> None:
    lines = trial.lines
    files = len(trial.files)
    counted = {
        "ticks": np.bincount(lines.file[np.isin(lines.event, TICK_CODES)], minlength=files),
        "sent": np.bincount(lines.file[trial.sends.row], minlength=files),
        "received": np.bincount(lines.file[trial.receives.messages.row], minlength=files),
        "dropped": np.bincount(lines.file[trial.failures.row], minlength=files),
    }
    for i, f in enumerate(trial.files):
        if f.totals is None or not f.stop_rows:
            continue
        said = {
            "ticks": f.totals.ticks,
            "sent": f.totals.sent,
            "received": f.totals.received,
            "dropped": f.totals.dropped,
        }
        wrong = [
            f"{key} {said[key]} but {counted[key][i]} in the log"
            for key in said
            if said[key] != counted[key][i]
        ]
        if wrong:
            found.one(Rule.TOTALS, f.stop_rows[-1], "stop says " + ", ".join(wrong))


def _event(trial: TrialLog, row: int) -> str:
    return str(EVENTS[trial.lines.event[row]].value)


def _vc(row: Any) -> str:
    return "[" + ", ".join(str(int(v)) for v in row) + "]"
