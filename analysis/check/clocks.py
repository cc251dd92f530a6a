"""The checker: are a trial's clocks exactly what the rules say, line by line?

Every rule is checked on whole columns at once. A line whose predecessor was
quarantined is not judged against it; the verdict is then at best unknown.
The rules across VMs live in messages.py, the fate of every message in accounting.py.
A trial whose manifest does not say it completed is never valid.
"""

from __future__ import annotations

import numpy as np

from analysis.check.accounting import message_fates
from analysis.check.messages import check_messages
from analysis.check.verdict import RULES, CheckResult, Findings, Rule, Verdict, event_name, vc_text
from analysis.columns import INTERNAL, RECEIVE, SEND, Ints, Lines, TrialLog, is_tick
from analysis.offsets import Tolerance
from vm_node.rundir import Manifest
from vm_node.vocabulary import CLOCK_LIMIT

__all__ = ["RULES", "CheckResult", "Rule", "Verdict", "check_trial"]


def check_trial(trial: TrialLog, *, skew: float | None = None, keep: int = 5) -> CheckResult:
    """Judge one trial. `skew` is how far (s) any two VMs' wall clocks may disagree; without
    it, each pair's tolerance comes from the trial's offsets (analysis.offsets)."""
    tolerance = Tolerance.of(trial, skew)
    found = Findings(trial, keep)
    found.incomplete += trial.problems
    if trial.quarantined_count:
        first = trial.quarantined[0]
        found.incomplete.append(f"{trial.quarantined_count} unreadable line(s), first {first}")
    if not len(trial.lines):
        found.incomplete.append("no readable log line")
    _check_structure(trial, found)
    _check_steps(trial, found)
    check_messages(trial, found, tolerance)
    if not trial.quarantined_count:
        _check_totals(trial, found)
    if not trial.quarantined_count and not trial.problems:  # else a message may only seem gone
        for gap in message_fates(trial, tolerance=tolerance).unexplained:
            found.one(gap.rule, gap.row, gap.detail)
    if not trial.manifest.completed:
        found.incomplete.append(_not_completed(trial.manifest))
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


def _not_completed(manifest: Manifest) -> str:
    if manifest.outcome is None:
        return "no manifest says the trial completed"
    said = f"the manifest says the trial is {manifest.outcome.value}, not completed"
    return f"{said} ({manifest.error})" if manifest.error else said


def _check_structure(trial: TrialLog, found: Findings) -> None:
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
    rows = _out_of_range(lines)
    found.add(
        Rule.CLOCK_RANGE,
        rows,
        lambda k: f"lamport {lines.lamport[rows[k]]}, vc {vc_text(lines.vc[rows[k]])}",
    )
    vc_max, vc_sum = np.zeros(len(lines), dtype=np.int64), np.zeros(len(lines), dtype=np.int64)
    for entry in lines.vc.T:  # a column at a time: numpy reduces short rows slowly
        np.maximum(vc_max, entry, out=vc_max)
        vc_sum += entry
    rows = np.flatnonzero((lines.lamport < vc_max) | (lines.lamport > vc_sum))
    found.add(
        Rule.VC_LAMPORT,
        rows,
        lambda k: (
            f"lamport {lines.lamport[rows[k]]} outside [max(vc), sum(vc)] = "
            f"[{vc_max[rows[k]]}, {vc_sum[rows[k]]}]"
        ),
    )


def _out_of_range(lines: Lines) -> Ints:
    """The rows whose lamport or a vc entry is negative or reaches CLOCK_LIMIT."""
    clocks = (lines.lamport, lines.vc)
    if all(c.min(initial=0) >= 0 and c.max(initial=0) < CLOCK_LIMIT for c in clocks):
        return np.zeros(0, dtype=np.int64)  # the usual case, seen in four reductions
    beyond = (lines.lamport < 0) | (lines.lamport >= CLOCK_LIMIT)
    for entry in lines.vc.T:
        beyond |= (entry < 0) | (entry >= CLOCK_LIMIT)
    return np.flatnonzero(beyond)


def _check_start_clocks(trial: TrialLog, found: Findings, row: int, before: int | None) -> None:
    """Zero clocks on a first start; a restart's start repeats the last line before it."""
    lines = trial.lines
    clocks = f"lamport {lines.lamport[row]}, vc {vc_text(lines.vc[row])}"
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
                f"{lines.lamport[before]}, vc {vc_text(lines.vc[before])}",
            )


def _check_steps(trial: TrialLog, found: Findings) -> None:
    """Each line against the one before it in the same file."""
    lines = trial.lines
    n = len(lines)
    if n < 2:
        return
    same = lines.file[1:] == lines.file[:-1]
    apart = np.diff(lines.line)
    follows = same & (apart == 1)  # nothing quarantined between

    rows = np.flatnonzero(same & (np.diff(lines.seq) != apart)) + 1
    del same, apart
    found.add(
        Rule.SEQ, rows, lambda k: f"seq {lines.seq[rows[k]]} follows {lines.seq[rows[k] - 1]}"
    )

    _check_ticks(trial, found)

    # before + 1 on a step, max(before, message) + 1 on a receive, else before: the
    # receives set theirs in place, as a column of messages would be as long as the trial
    event = lines.event[1:]
    receive = event == RECEIVE
    before, after = lines.lamport[:-1], lines.lamport[1:]
    expected = before + ((event == INTERNAL) | (event == SEND) | receive)
    got = trial.receives.messages.row
    judged = got > 0  # a receive with a line before it
    message = trial.receives.msg_lamport[judged]
    at = got[judged] - 1
    expected[at] = np.maximum(before[at], message) + 1
    wrong = follows & (after != expected)
    rows = np.flatnonzero(wrong & ~receive) + 1
    found.add(
        Rule.LAMPORT_STEP,
        rows,
        lambda k: (
            f"{event_name(trial, rows[k])} sets lamport {lines.lamport[rows[k]]} after "
            f"{lines.lamport[rows[k] - 1]}; expected {expected[rows[k] - 1]}"
        ),
    )
    receipts = np.flatnonzero(wrong & receive)
    found.add(
        Rule.RECEIVE_RULE,
        receipts + 1,
        lambda k: (
            f"receive sets lamport {lines.lamport[receipts[k] + 1]}, but max(local "
            f"{lines.lamport[receipts[k]]}, message "
            f"{message[np.flatnonzero(at == receipts[k])[0]]}) + 1 = {expected[receipts[k]]}"
        ),
    )

    receives = trial.receives
    judged_rows = got[judged]
    judged_jump = receives.jump[judged]
    keep = follows[judged_rows - 1]
    judged_rows, judged_jump = judged_rows[keep], judged_jump[keep]
    actual = lines.lamport[judged_rows] - lines.lamport[judged_rows - 1]
    bad = np.flatnonzero(judged_jump != actual)
    found.add(
        Rule.JUMP,
        judged_rows[bad],
        lambda k: (
            f"jump {judged_jump[bad[k]]}, but the clock went from "
            f"{lines.lamport[judged_rows[bad[k]] - 1]} to {lines.lamport[judged_rows[bad[k]]]}"
        ),
    )


def _check_ticks(trial: TrialLog, found: Findings) -> None:
    """Tick indices count up by one within a file; a first incarnation starts at tick 0."""
    lines = trial.lines
    rows = np.flatnonzero(is_tick(lines.event))
    ticks = lines.tick[rows]
    # consecutive ticks of one file with no quarantined line between them
    judged = np.diff(lines.file[rows]) == 0
    judged &= np.diff(lines.line[rows]) == np.diff(rows)
    bad = np.flatnonzero(judged & (np.diff(ticks) != 1)) + 1
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


def _check_totals(trial: TrialLog, found: Findings) -> None:
    lines = trial.lines
    files = len(trial.files)
    counted = {
        "ticks": np.bincount(lines.file[is_tick(lines.event)], minlength=files),
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
