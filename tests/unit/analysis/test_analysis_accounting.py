"""Every msg_id ends in one fate backed by a line; doctored books are invalid, naming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from runlogs import Record, doctor, find, is_event, records, remove_line
from test_analysis_cli import clocklab

from analysis.check import CheckResult, Rule, Verdict, check_trial
from analysis.check.accounting import account
from analysis.load import load_trial
from vm_node.rundir import Manifest, Outcome, RunDir

FAULTY = {"loss_rate": 0.1, "duplicate_rate": 0.1}  # failure_rate 0.05 comes with every run


def checked(run_dir: Path) -> CheckResult:
    return check_trial(load_trial(run_dir))


def named(result: CheckResult, rule: Rule) -> list[str]:
    return [str(v) for v in result.examples if v.rule is rule]


def all_lines(run_dir: Path) -> list[tuple[Path, int, Record]]:
    return [(path, n, r) for _, _, path in RunDir(run_dir).log_files() for n, r in records(path)]


def is_fault(kind: str) -> Callable[[Record], bool]:
    return lambda r: r["event"] == "fault" and r["kind"] == kind


def assert_invalid_naming(run_dir: Path, rule: Rule, msg_id: str, where: str) -> None:
    result = checked(run_dir)
    assert result.verdict is Verdict.INVALID
    assert any(msg_id in v and v.startswith(where) for v in named(result, rule)), result.examples
    assert clocklab("check", str(run_dir)) == 1


def test_a_run_with_failures_losses_and_duplicates_is_valid_and_every_fault_is_booked(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**FAULTY)
    result = checked(run_dir)
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    a = account(load_trial(run_dir))
    lines = [r for _, _, r in all_lines(run_dir)]
    assert a.balanced and a.vanished == 0
    refused = {r["msg_id"] for r in lines if r["event"] == "send_failed"}
    assert a.dropped == sum(is_fault("loss")(r) for r in lines) > 0
    # A duplicate that its link refused (each copy gets a send_failed) sent no second copy.
    doubled = [r for r in lines if is_fault("duplicate")(r) and r["msg_id"] not in refused]
    assert a.duplicated == len(doubled) > 0
    assert a.failed == len(refused) > 0
    assert a.queued > 0  # the slow VM's inbox at its stop
    assert a.received + a.failed + a.dropped + a.queued + a.lost == a.sent


def test_a_lowered_stop_queue_len_leaves_the_oldest_waiting_message_vanished(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(rates=(1.0, 6.0, 6.0), duration=60.0)
    path = RunDir(run_dir).log_path(0)
    line, stop = find(path, is_event("stop"))
    assert stop["queue_len"] > 0
    doctor(path, line, lambda r: r.update(queue_len=r["queue_len"] - 1))
    lines = all_lines(run_dir)
    settled = {r["msg_id"] for _, _, r in lines if r["event"] in ("receive", "send_failed")}
    waiting = sorted(
        (r["timestamp"], msg_id)
        for _, _, r in lines
        if r["event"] == "send"
        for to, msg_id in zip(r["to"], r["msg_ids"], strict=True)
        if to == 0 and msg_id not in settled
    )
    assert_invalid_naming(run_dir, Rule.VANISHED, waiting[0][1], f"{path}:{line}")
    assert len(named(checked(run_dir), Rule.VANISHED)) == 1


def test_a_deleted_send_failed_line_leaves_its_message_vanished(run_dir: Path) -> None:
    (path, line, failure) = next(
        (p, n, r) for p, n, r in all_lines(run_dir) if r["event"] == "send_failed"
    )
    remove_line(path, line)
    stop_line, _ = find(path, is_event("stop"))
    doctor(path, stop_line, lambda r: r.update(dropped=r["dropped"] - 1))  # totals still agree
    receiver = RunDir(run_dir).log_path(failure["to"])
    stop_at = f"{receiver}:{find(receiver, is_event('stop'))[0]}"
    assert_invalid_naming(run_dir, Rule.VANISHED, failure["msg_id"], stop_at)
    assert set(dict(checked(run_dir).counts)) == {Rule.VANISHED}  # nothing else gives it away


def test_a_receive_of_a_never_sent_msg_id_is_invalid_and_named(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(0)
    line, receive = find(path, is_event("receive"), 2)
    doctor(path, line, lambda r: r.update(msg_id="1-0-99999"))
    assert_invalid_naming(run_dir, Rule.UNKNOWN_MESSAGE, "1-0-99999", f"{path}:{line}")
    assert any(receive["msg_id"] in v for v in named(checked(run_dir), Rule.VANISHED))


def test_a_second_copy_without_its_duplicate_fault_line_is_a_surplus(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**FAULTY)
    lines = all_lines(run_dir)
    received = [r["msg_id"] for _, _, r in lines if r["event"] == "receive"]
    path, line, fault = next(
        (p, n, r)
        for p, n, r in lines
        if is_fault("duplicate")(r) and received.count(r["msg_id"]) == 2
    )
    remove_line(path, line)
    receiver = RunDir(run_dir).log_path(fault["to"])
    second, _ = find(receiver, lambda r: r.get("msg_id") == fault["msg_id"], 1)
    assert_invalid_naming(run_dir, Rule.SURPLUS, fault["msg_id"], f"{receiver}:{second}")
    assert set(dict(checked(run_dir).counts)) == {Rule.SURPLUS}


def test_a_raised_stop_queue_len_with_no_duplicate_condition_is_a_surplus(run_dir: Path) -> None:
    path = RunDir(run_dir).log_path(1)
    line, _ = find(path, is_event("stop"))
    doctor(path, line, lambda r: r.update(queue_len=r["queue_len"] + 1))
    result = checked(run_dir)
    assert result.verdict is Verdict.INVALID
    (surplus,) = named(result, Rule.SURPLUS)
    assert surplus.startswith(f"{path}:{line}: stop says queue_len 1, but 1 more")


def test_a_queue_longer_than_the_waiting_messages_queues_them_all_and_names_one_surplus(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(rates=(1.0, 6.0, 6.0), duration=60.0)
    path = RunDir(run_dir).log_path(0)
    line, stop = find(path, is_event("stop"))
    assert stop["queue_len"] > 1
    doctor(path, line, lambda r: r.update(queue_len=r["queue_len"] + 1))
    result = checked(run_dir)
    (surplus,) = named(result, Rule.SURPLUS)
    assert surplus.startswith(
        f"{path}:{line}: stop says queue_len {stop['queue_len'] + 1}, but 1 more"
    )
    assert set(dict(result.counts)) == {Rule.SURPLUS}  # every waiting message is queued
    assert account(load_trial(run_dir)).queued == stop["queue_len"]


def test_a_received_message_that_a_loss_condition_dropped_is_a_surplus(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**FAULTY)
    lines = all_lines(run_dir)
    received = {r["msg_id"] for _, _, r in lines if r["event"] == "receive"}
    path, line, fault = next(
        (p, n, r) for p, n, r in lines if is_fault("duplicate")(r) and r["msg_id"] in received
    )
    doctor(path, line, lambda r: r.update(kind="loss"))
    receiver = RunDir(run_dir).log_path(fault["to"])
    first, _ = find(receiver, lambda r: r.get("msg_id") == fault["msg_id"])
    assert_invalid_naming(run_dir, Rule.SURPLUS, fault["msg_id"], f"{receiver}:{first}")


@pytest.mark.parametrize("outcome", [Outcome.INTERRUPTED, Outcome.FAILED, Outcome.RUNNING, None])
def test_a_trial_that_did_not_complete_is_never_valid(run_dir: Path, outcome: Outcome) -> None:
    run = RunDir(run_dir)
    run.write_manifest(run.read_manifest().with_(outcome=outcome, error="SIGTERM"))
    result = checked(run_dir)
    assert result.verdict is Verdict.UNKNOWN
    assert any("completed" in reason for reason in result.incomplete), result.incomplete
    assert clocklab("check", str(run_dir)) == 3


def test_an_interrupted_trial_that_breaks_a_rule_is_invalid(run_dir: Path) -> None:
    run = RunDir(run_dir)
    run.write_manifest(run.read_manifest().with_(outcome=Outcome.INTERRUPTED))
    path = run.log_path(1)
    line, _ = find(path, is_event("stop"))
    doctor(path, line, lambda r: r.update(queue_len=r["queue_len"] + 1))
    assert checked(run_dir).verdict is Verdict.INVALID


T0 = 1000.0


def at(
    seconds: float, event: str, lamport: int, vc: list[int], queue: int = 0, **more: Any
) -> Record:
    """A line of a hand-made two-VM log, `seconds` after the agreed start."""
    clocks = {"lamport": lamport, "vc": {"0": vc[0], "1": vc[1]}, "queue_len": queue}
    return {"event": event, "timestamp": T0 + seconds, **clocks, **more}


def edges(
    vm: int, rate: float, lamport: int = 0, vc: tuple[int, int] = (0, 0), when: float = -1.0
) -> list[Record]:
    config = {"vm": vm, "vms": 2, "rate": rate, "time_scale": 1.0, "duration": 11.0}
    return [
        at(when, "start", lamport, list(vc), config=config | {"start_at": None}),
        at(when + 0.5, "ready", lamport, list(vc), start_at=T0),
    ]


def write_hand_made(run_dir: Path, logs: dict[tuple[int, int], list[Record]]) -> Path:
    """Logs keyed by (vm, incarnation); each line gets its seq, run, vm and incarnation."""
    run = RunDir(run_dir)
    run.logs.mkdir(parents=True)
    for (vm, incarnation), lines in logs.items():
        full = [
            r | {"seq": seq, "run": "hand", "vm": vm, "incarnation": incarnation}
            for seq, r in enumerate(lines)
        ]
        run.log_path(vm, incarnation).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in full))
    run.write_manifest(Manifest("hand", 1, run="hand", outcome=Outcome.COMPLETED))
    return run_dir


def crashed_run(run_dir: Path, queued_at_last_line: int) -> Path:
    """vm0 sends two messages to vm1, which holds both when it is killed; vm1 restarts empty."""
    vm0 = [
        *edges(0, 4.0),
        at(0.0, "send", 1, [1, 0], tick=0, to=[1], msg_ids=["0-0-1"]),
        at(0.25, "send", 2, [2, 0], tick=1, to=[1], msg_ids=["0-0-2"]),
        at(0.5, "internal", 3, [3, 0], tick=2),
        at(11.0, "stop", 3, [3, 0], ticks=3, sent=2, received=0, dropped=0),
    ]
    killed = [  # at 4 s: no stop line
        *edges(1, 0.2),
        at(0.0, "internal", 1, [0, 1], tick=0),
        at(3.0, "peer_up", 1, [0, 1], queued_at_last_line, peer=0),
    ]
    restarted = [
        *edges(1, 0.2, 1, (0, 1), when=5.5),
        at(10.0, "internal", 2, [0, 2], tick=2),
        at(10.5, "stop", 2, [0, 2], ticks=1, sent=0, received=0, dropped=0),
    ]
    return write_hand_made(run_dir, {(0, 0): vm0, (1, 0): killed, (1, 1): restarted})


def stopped_before_a_bye(run_dir: Path, missing_byes: list[int]) -> Path:
    """vm1 stops at 10.4 s without vm0's bye; vm0 sends it a message at 10.45 s."""
    vm0 = [
        *edges(0, 4.0),
        at(0.0, "internal", 1, [1, 0], tick=0),
        at(10.45, "send", 2, [2, 0], tick=1, to=[1], msg_ids=["0-0-1"]),
        at(11.0, "stop", 2, [2, 0], ticks=2, sent=1, received=0, dropped=0),
    ]
    vm1 = [
        *edges(1, 0.2),
        at(0.0, "internal", 1, [0, 1], tick=0),
        at(
            10.4,
            "stop",
            1,
            [0, 1],
            ticks=1,
            sent=0,
            received=0,
            dropped=0,
            missing_byes=missing_byes,
        ),
    ]
    return write_hand_made(run_dir, {(0, 0): vm0, (1, 0): vm1})


def test_messages_in_a_killed_incarnation_s_inbox_are_lost_in_the_crash(tmp_path: Path) -> None:
    run_dir = crashed_run(tmp_path / "crash" / "trial-1", queued_at_last_line=2)
    result = checked(run_dir)
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    a = account(load_trial(run_dir))
    assert (a.sent, a.lost, a.vanished, a.received) == (2, 2, 0, 0) and a.balanced


def test_a_crash_loses_no_more_than_its_last_line_s_queue_could_hold(tmp_path: Path) -> None:
    run_dir = crashed_run(tmp_path / "crash" / "trial-1", queued_at_last_line=1)
    last_line = f"{RunDir(run_dir).log_path(1, 0)}:4"
    assert_invalid_naming(run_dir, Rule.VANISHED, "0-0-1", last_line)  # the older one
    a = account(load_trial(run_dir))
    assert (a.lost, a.vanished) == (1, 1)


def test_a_message_sent_as_its_receiver_stopped_without_the_sender_s_bye_is_lost(
    tmp_path: Path,
) -> None:
    run_dir = stopped_before_a_bye(tmp_path / "hand" / "trial-1", missing_byes=[0])
    result = checked(run_dir)
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    assert account(load_trial(run_dir)).lost == 1


def test_after_every_bye_came_a_message_sent_as_the_receiver_stopped_has_vanished(
    tmp_path: Path,
) -> None:
    run_dir = stopped_before_a_bye(tmp_path / "hand" / "trial-1", missing_byes=[])
    stop = f"{RunDir(run_dir).log_path(1)}:4"
    assert_invalid_naming(run_dir, Rule.VANISHED, "0-0-1", stop)
