"""The checker's vocabulary: verdicts, rules, counter-examples, and what collects them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from analysis.columns import EVENTS, Ints, TrialLog


class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"

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
    SEND_BEFORE_RECEIVE = "send_before_receive"
    VC_STEP = "vc_step"
    VC_MERGE = "vc_merge"
    VC_LAMPORT = "vc_lamport"
    HAPPENED_BEFORE = "happened_before"
    TOTALS = "totals"
    VANISHED = "vanished"
    SURPLUS = "surplus"


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
    Rule.SEND_BEFORE_RECEIVE: "a message is sent (wall clock) before it is received",
    Rule.VC_STEP: "internal and send add 1 to the VM's own vector entry; other lines keep it",
    Rule.VC_MERGE: "receive sets vc = max(local, message) then adds 1 to its own entry",
    Rule.VC_LAMPORT: "max(vc) <= lamport <= sum(vc)",
    Rule.HAPPENED_BEFORE: "a send's vector clock is below its receive's",
    Rule.TOTALS: "the stop line's totals match the lines",
    Rule.VANISHED: "every msg_id sent is received, failed, dropped by loss, queued at a clean "
    "stop or lost in a crash",
    Rule.SURPLUS: "a copy beyond a message's first (received again, or queued) needs a "
    "duplicate condition; a dropped message is never received",
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


class Findings:
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


def event_name(trial: TrialLog, row: int) -> str:
    return str(EVENTS[trial.lines.event[row]].value)


def vc_text(row: Any) -> str:
    return "[" + ", ".join(str(int(v)) for v in row) + "]"
