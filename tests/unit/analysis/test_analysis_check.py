"""The checker passes valid runs and catches each class of doctored line, by file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from runlogs import Record, doctor, find, is_event, records, remove_line, replace_line, restart

from analysis.check.clocks import Rule, Verdict, check_trial
from analysis.load.runs import load_trial
from vm_node.rundir import RunDir

Injection = Callable[[Path], tuple[Path, int]]


def log(run_dir: Path, vm: int) -> Path:
    return RunDir(run_dir).log_path(vm)


def change(
    vm: int, want: Callable[[Record], bool], edit: Callable[[Record], None], nth: int = 2
) -> Injection:
    """Edit the nth line of vm's log that `want` accepts."""

    def inject(run_dir: Path) -> tuple[Path, int]:
        path = log(run_dir, vm)
        line, _ = find(path, want, nth)
        doctor(path, line, edit)
        return path, line

    return inject


def bump(key: str, by: int = 1) -> Callable[[Record], None]:
    return lambda r: r.update({key: r[key] + by})


def bump_vc(entry: str, by: int) -> Callable[[Record], None]:
    return lambda r: r["vc"].update({entry: r["vc"][entry] + by})


def sender_entry_zeroed(r: Record) -> None:
    r["vc"][str(r["from"])] = 0


def other_sender(r: Record) -> None:
    r["from"] = ({0, 1, 2} - {r["vm"], r["from"]}).pop()


def duplicate_an_earlier_msg_id(run_dir: Path) -> tuple[Path, int]:
    path = log(run_dir, 1)
    _, first = find(path, is_event("send"), 0)
    line, _ = find(path, is_event("send"), 3)
    doctor(path, line, lambda r: r["msg_ids"].__setitem__(0, first["msg_ids"][0]))
    return path, line


def line_after_stop(run_dir: Path) -> tuple[Path, int]:
    path = log(run_dir, 0)
    last_line, stop = list(records(path))[-1]
    extra = stop | {"event": "peer_down", "seq": stop["seq"] + 1, "peer": 1, "reason": "eof"}
    path.write_bytes(path.read_bytes() + orjson.dumps(extra) + b"\n")
    return path, last_line


def failure_without_its_line(run_dir: Path) -> tuple[Path, int]:
    """Delete a send_failed line, mending seq and the stop's totals: only the books show it."""
    sender = next(
        log(run_dir, vm) for vm in range(3) if b"send_failed" in log(run_dir, vm).read_bytes()
    )
    line, failure = find(sender, is_event("send_failed"))
    remove_line(sender, line)
    stop_line, _ = find(sender, is_event("stop"))
    doctor(sender, stop_line, lambda r: r.update(dropped=r["dropped"] - 1))
    receiver = log(run_dir, failure["to"])
    return receiver, find(receiver, is_event("stop"))[0]


receive = is_event("receive")
internal = is_event("internal")
INJECTIONS: list[tuple[Rule, Injection]] = [
    (Rule.LAMPORT_STEP, change(0, internal, bump("lamport", 5))),
    (
        Rule.RECEIVE_RULE,
        change(0, receive, lambda r: r.update(lamport=r["lamport"] + 1, jump=r["jump"] + 1)),
    ),
    (Rule.JUMP, change(0, receive, bump("jump"))),
    (Rule.MESSAGE_CLOCK, change(0, receive, bump("msg_lamport", -1))),
    (Rule.UNKNOWN_MESSAGE, change(0, receive, lambda r: r.update(msg_id="1-0-99999"))),
    (Rule.DUPLICATE_SEND, duplicate_an_earlier_msg_id),
    (Rule.MISROUTED, change(0, receive, other_sender)),
    (
        Rule.SEND_BEFORE_RECEIVE,
        change(0, receive, lambda r: r.update(timestamp=r["timestamp"] - 100)),
    ),
    (Rule.VC_STEP, change(1, internal, bump_vc("1", 1))),
    (Rule.VC_MERGE, change(0, receive, bump_vc("2", 1))),
    (Rule.HAPPENED_BEFORE, change(0, receive, sender_entry_zeroed)),
    (Rule.VC_LAMPORT, change(1, internal, bump_vc("0", 1000))),
    (Rule.SEQ, change(2, internal, bump("seq"))),
    (Rule.TICK, change(2, internal, bump("tick"))),
    (Rule.TOTALS, change(2, is_event("stop"), bump("received"), nth=0)),
    (Rule.CLOCK_RANGE, change(2, internal, lambda r: r.update(lamport=2**53))),
    (Rule.START_CLOCKS, change(1, is_event("start"), bump("lamport", 3), nth=0)),
    (Rule.STRUCTURE, line_after_stop),
    (Rule.VANISHED, failure_without_its_line),
    (Rule.SURPLUS, change(1, is_event("stop"), bump("queue_len"), nth=0)),
]


def test_a_simulated_run_with_failed_sends_and_bad_frames_is_valid(run_dir: Path) -> None:
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    assert result.messages > 50


@pytest.mark.parametrize(("rule", "inject"), INJECTIONS, ids=[rule.value for rule, _ in INJECTIONS])
def test_each_doctored_line_makes_the_run_invalid_with_a_counter_example_at_that_line(
    run_dir: Path, rule: Rule, inject: Injection
) -> None:
    path, line = inject(run_dir)
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.INVALID
    assert f"{path}:{line}" in [v.where for v in result.examples if v.rule is rule], result.examples


def test_every_rule_has_an_injection_that_breaks_it() -> None:
    assert {rule for rule, _ in INJECTIONS} == set(Rule)


def test_a_truncated_last_line_makes_the_verdict_unknown(run_dir: Path) -> None:
    path = log(run_dir, 1)
    last = len(path.read_bytes().splitlines())
    replace_line(path, last, b'{"event":"stop","timestamp":17')
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.UNKNOWN
    assert any(f"{path}:{last}" in reason for reason in result.incomplete), result.incomplete
    assert any("no stop line" in reason for reason in result.incomplete)


def test_a_vm_killed_and_restarted_with_its_clocks_resumed_is_valid(run_dir: Path) -> None:
    restart(log(run_dir, 1), killed_after=40)
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples] + list(
        result.incomplete
    )


def test_a_restart_that_does_not_resume_the_clocks_is_invalid(run_dir: Path) -> None:
    restarted = restart(log(run_dir, 1), killed_after=40)
    doctor(restarted, 1, bump("lamport", -1))
    result = check_trial(load_trial(run_dir))
    assert f"{restarted}:1" in [v.where for v in result.examples if v.rule is Rule.START_CLOCKS]


def test_a_missing_vm_log_makes_the_verdict_unknown_not_invalid(run_dir: Path) -> None:
    log(run_dir, 2).unlink()
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.UNKNOWN
    assert "VM 2 has no log (expected logs/vm2.jsonl)" in result.incomplete
    assert any("from vm2.jsonl, which is missing" in reason for reason in result.incomplete)


def test_a_receive_whose_send_line_is_unreadable_is_unknown_not_invalid(run_dir: Path) -> None:
    line, _ = find(log(run_dir, 2), is_event("send"), 2)
    replace_line(log(run_dir, 2), line, b'{"event":"send","timest')
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.UNKNOWN, result.examples
    assert any("from vm2.jsonl, which is missing or incomplete" in r for r in result.incomplete)


def test_a_violation_outweighs_incomplete_logs(run_dir: Path) -> None:
    replace_line(log(run_dir, 1), 5, b"garbage")
    change(0, receive, bump("jump"))(run_dir)
    assert check_trial(load_trial(run_dir)).verdict is Verdict.INVALID


def test_counter_examples_are_capped_per_rule_while_every_violation_is_counted(
    run_dir: Path,
) -> None:
    path = log(run_dir, 2)
    lines = [n for n, r in records(path) if r["event"] == "internal"][:12]
    for k, line in enumerate(lines, 1):
        doctor(path, line, bump("tick", 1000 * k))
    result = check_trial(load_trial(run_dir), keep=3)
    assert dict(result.counts)[Rule.TICK] >= 12
    assert len([v for v in result.examples if v.rule is Rule.TICK]) == 3


def test_a_receive_logged_slightly_before_its_send_passes_within_the_allowed_skew(
    run_dir: Path,
) -> None:
    path = log(run_dir, 0)
    line, record = find(path, receive, 0)
    sends = [r for vm in (1, 2) for _, r in records(log(run_dir, vm)) if r["event"] == "send"]
    sent_at = next(r["timestamp"] for r in sends if record["msg_id"] in r["msg_ids"])
    doctor(path, line, lambda r: r.update(timestamp=sent_at - 0.002))
    assert check_trial(load_trial(run_dir)).verdict is Verdict.INVALID
    assert check_trial(load_trial(run_dir), skew=0.005).verdict is Verdict.VALID
    too_small = check_trial(load_trial(run_dir), skew=0.001)
    (example,) = [v for v in too_small.examples if v.rule is Rule.SEND_BEFORE_RECEIVE]
    assert "more than --skew 0.001 s" in example.detail
    assert "'s send and vm0's receive" in example.detail  # which ordering it could not decide


def test_the_worst_verdict_is_invalid_then_unknown_then_valid() -> None:
    assert Verdict.worst([Verdict.VALID, Verdict.UNKNOWN, Verdict.INVALID]) is Verdict.INVALID
    assert Verdict.worst([Verdict.VALID, Verdict.UNKNOWN]) is Verdict.UNKNOWN
