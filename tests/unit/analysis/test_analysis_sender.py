"""A sender killed with messages on the wire loses them: only those, and only when killed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from runlogs import Record, records
from test_analysis_accounting import all_lines, assert_invalid_naming, checked

from analysis.check import Rule, Verdict
from analysis.check.accounting import account, message_fates
from analysis.check.fates import FATES, Fate
from analysis.check.inbox import IN_FLIGHT
from analysis.load import load_trial
from vm_node.rundir import RunDir
from vm_node.sim import Kill

# vm2 is killed mid-run and restarted; a message spends 1 s on the wire (less than a
# link's patience), so what vm2 sent in its last second dies with it.
KILLED = {"delay": 1.0, "kill": Kill(vm=2, at=20.0, down_for=5.0)}


def on_the_wire(run_dir: Path) -> list[tuple[float, str, int]]:
    """(sent at, msg_id, receiver) of what vm2's first incarnation sent and nobody got."""
    settled = {r["msg_id"] for _, _, r in all_lines(run_dir) if "msg_id" in r}
    return [
        (r["timestamp"], msg_id, to)
        for _, r in records(RunDir(run_dir).log_path(2, 0))
        if r["event"] == "send"
        for to, msg_id in zip(r["to"], r["msg_ids"], strict=True)
        if msg_id not in settled
    ]


def fates_of(run_dir: Path) -> dict[str, Fate]:
    trial = load_trial(run_dir)
    fate = message_fates(trial).fate
    return {m: FATES[f] for m, f in zip(trial.sends.msg_id, fate.tolist(), strict=True)}


def stop_line(run_dir: Path, vm: int) -> str:
    path = RunDir(run_dir).log_path(vm)
    (line,) = [n for n, r in records(path) if r["event"] == "stop"]
    return f"{path}:{line}"


def test_messages_on_the_wire_when_their_sender_is_killed_are_lost_with_it(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**KILLED)
    assert "stop" not in {r["event"] for _, r in records(RunDir(run_dir).log_path(2, 0))}
    gone = on_the_wire(run_dir)
    assert gone
    result = checked(run_dir)
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    fates = fates_of(run_dir)
    assert {fates[msg_id] for _, msg_id, _ in gone} == {Fate.LOST}
    a = account(load_trial(run_dir))
    assert a.balanced and a.vanished == 0 and a.lost >= len(gone)
    assert a.received + a.failed + a.dropped + a.queued + a.lost == a.sent


def test_a_message_sent_longer_than_a_link_s_patience_before_its_sender_died_has_vanished(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**KILLED)
    gone = on_the_wire(run_dir)
    sent_at, oldest, receiver = min(gone)
    # The trial stands still right after that send: vm2 lived on past it, longer than
    # its link would have waited to report the message failed.
    for _, _, path in RunDir(run_dir).log_files():
        _rewrite(path, lambda r: _later(r, after=sent_at, by=IN_FLIGHT + 0.1))
    last = max(r["timestamp"] for _, r in records(RunDir(run_dir).log_path(2, 0)))
    assert last - sent_at > IN_FLIGHT
    assert_invalid_naming(run_dir, Rule.VANISHED, oldest, stop_line(run_dir, receiver))
    fates = fates_of(run_dir)
    assert fates[oldest] is Fate.VANISHED
    later = [msg_id for at, msg_id, _ in gone if at > sent_at]  # still within its patience
    assert later and all(fates[msg_id] is Fate.LOST for msg_id in later)


def test_a_sender_that_stopped_cleanly_lost_nothing_it_sent(
    make_run: Callable[..., Path],
) -> None:
    run_dir = make_run(**KILLED)
    killed = RunDir(run_dir).log_path(2, 0)
    _append_stop(killed)
    gone = on_the_wire(run_dir)
    assert checked(run_dir).verdict is Verdict.INVALID
    fates = fates_of(run_dir)
    assert {fates[msg_id] for _, msg_id, _ in gone} == {Fate.VANISHED}
    _, first, receiver = min(gone)
    assert_invalid_naming(run_dir, Rule.VANISHED, first, stop_line(run_dir, receiver))


def _later(record: Record, *, after: float, by: float) -> None:
    if record["timestamp"] > after:
        record["timestamp"] += by


def _rewrite(path: Path, change: Callable[[Record], None]) -> None:
    lines = [r for _, r in records(path)]
    for r in lines:
        change(r)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))


def _append_stop(path: Path) -> None:
    """A stop line after the last, with the clocks, queue and totals the log shows."""
    lines = [r for _, r in records(path)]
    last, config = lines[-1], lines[0]["config"]
    ticks = [r for r in lines if r["event"] in ("internal", "send", "receive")]
    stop = {
        key: last[key] for key in ("run", "vm", "incarnation", "lamport", "vc", "queue_len")
    } | {
        "event": "stop",
        "timestamp": last["timestamp"] + 0.01,
        "seq": last["seq"] + 1,
        "reason": "completed",
        "ticks": len(ticks),
        "sent": sum(len(r.get("msg_ids", ())) for r in lines),
        "received": sum(r["event"] == "receive" for r in lines),
        "dropped": sum(r["event"] == "send_failed" for r in lines),
        "bad_frames": sum(r["event"] == "bad_frame" for r in lines),
        "unacked": 0,
        "missing_byes": [],
        "rate_configured": config["rate"],
        "rate_achieved": config["rate"],
    }
    path.write_bytes(path.read_bytes() + orjson.dumps(stop) + b"\n")
