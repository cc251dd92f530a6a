"""The simulator: the VMs' own cores in virtual time, reproducible from a seed."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from analysis.check.clocks import Verdict, check_trial
from analysis.load import load_trial
from vm_node.rundir import RunDir
from vm_node.sim import Kill, SyntheticRun, write_run
from vm_node.vocabulary import LogLine

# Every kind of trouble the simulator offers, at once.
FAULTY = SyntheticRun(
    rates=(1.0, 3.0, 6.0),
    duration=30.0,
    time_scale=20.0,
    seed=11,
    failure_rate=0.05,
    loss_rate=0.1,
    duplicate_rate=0.1,
    bad_frame_rate=0.02,
)


def digests(run_dir: Path) -> dict[str, str]:
    """Each log's SHA-256, by file name."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(RunDir(run_dir).logs.iterdir())
    }


def vm_lines(run_dir: Path) -> list[list[dict[str, Any]]]:
    """Each log's lines, by VM id and then incarnation (one log per VM, unless one is killed)."""
    return [
        [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for _, _, path in sorted(RunDir(run_dir).log_files())
    ]


def test_the_same_seed_writes_byte_identical_logs(tmp_path: Path) -> None:
    first = digests(write_run(FAULTY, tmp_path / "a"))
    second = digests(write_run(FAULTY, tmp_path / "b"))
    assert len(first) == len(FAULTY.rates)
    assert first == second


def test_another_seed_writes_other_logs(tmp_path: Path) -> None:
    first = digests(write_run(FAULTY, tmp_path / "a"))
    other = digests(write_run(msgspec.structs.replace(FAULTY, seed=12), tmp_path / "b"))
    assert all(first[name] != other[name] for name in first)


def test_a_faulty_simulated_run_is_valid_and_shows_every_fault(tmp_path: Path) -> None:
    run_dir = write_run(FAULTY, tmp_path)
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
    events = {line["event"] for lines in vm_lines(run_dir) for line in lines}
    assert {"send_failed", "fault", "bad_frame", "receive"} <= events


def test_every_line_is_a_vocabulary_line_in_the_vms_own_encoding(tmp_path: Path) -> None:
    run = RunDir(write_run(FAULTY, tmp_path))
    decoder, encoder = msgspec.json.Decoder(LogLine), msgspec.json.Encoder()
    for vm in range(len(FAULTY.rates)):
        for line in run.log_path(vm).read_bytes().splitlines():
            assert encoder.encode(decoder.decode(line)) == line


def test_each_vm_is_configured_as_a_real_vm_of_the_trial_would_be(tmp_path: Path) -> None:
    for vm, lines in enumerate(vm_lines(write_run(FAULTY, tmp_path))):
        config = lines[0]["config"]
        assert lines[0]["event"] == "start" and lines[-1]["event"] == "stop"
        assert (config["vm"], config["vms"], config["rate"]) == (vm, 3, FAULTY.rates[vm])
        assert config["seed"] == FAULTY.vm_seeds[vm]
        assert [c["kind"] for c in config["links"]] == ["loss", "duplicate"]
        ticks = [line["tick"] for line in lines if "tick" in line]
        assert ticks == list(range(round(FAULTY.rates[vm] * FAULTY.duration)))


def test_every_receive_follows_the_receive_rule_from_its_send(tmp_path: Path) -> None:
    logs = vm_lines(write_run(FAULTY, tmp_path))
    sends = {
        msg_id: line
        for lines in logs
        for line in lines
        if line["event"] == "send"
        for msg_id in line["msg_ids"]
    }
    receives = 0
    for vm, lines in enumerate(logs):
        for before, line in itertools.pairwise(lines):
            if line["event"] != "receive":
                continue
            receives += 1
            sent = sends[line["msg_id"]]
            assert line["msg_lamport"] == sent["lamport"]
            assert line["lamport"] == max(before["lamport"], sent["lamport"]) + 1
            merged = {j: max(before["vc"][j], sent["vc"][j]) for j in before["vc"]}
            merged[str(vm)] += 1
            assert line["vc"] == merged
            assert line["jump"] == line["lamport"] - before["lamport"]
    assert receives > 50


@pytest.mark.parametrize("field", ["failure_rate", "loss_rate", "duplicate_rate"])
def test_each_fault_comes_from_its_own_option(tmp_path: Path, field: str) -> None:
    spec = SyntheticRun(rates=(2.0, 2.0), duration=30.0, time_scale=20.0, seed=1, **{field: 0.3})
    events = [line for lines in vm_lines(write_run(spec, tmp_path)) for line in lines]
    failed = [line for line in events if line["event"] == "send_failed"]
    kinds = {line["kind"] for line in events if line["event"] == "fault"}
    assert bool(failed) == (field == "failure_rate")
    expected = {"failure_rate": set(), "loss_rate": {"loss"}, "duplicate_rate": {"duplicate"}}
    assert kinds == expected[field]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"rates": ()}, "rates"),
        ({"rates": (1.0, -2.0)}, "rate"),
        ({"loss_rate": 1.5}, "loss_rate"),
        ({"delay": -0.1}, "delay"),
        ({"event_range": 0}, "event_range"),
        ({"kill": Kill(vm=3, at=1.0)}, "kill.vm"),
        ({"kill": Kill(vm=0, at=31.0)}, "kill.at"),
        ({"kill": Kill(vm=0, at=1.0, down_for=0.0)}, "kill.down_for"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_setting(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        msgspec.structs.replace(FAULTY, **changes)


def test_a_single_vm_runs_alone_whatever_the_network_would_do(tmp_path: Path) -> None:
    spec = SyntheticRun(rates=(5.0,), duration=10.0, seed=2, failure_rate=0.5, bad_frame_rate=0.5)
    (lines,) = vm_lines(write_run(spec, tmp_path))
    assert [line["event"] for line in lines[2:-1]] == ["internal"] * 50


def test_a_killed_vm_writes_nothing_more_and_what_it_had_on_the_wire_never_arrives(
    tmp_path: Path,
) -> None:
    spec = msgspec.structs.replace(FAULTY, delay=0.5, kill=Kill(vm=2, at=15.0))
    killed_at = spec.start_at + 15.0 / spec.time_scale
    vm0, vm1, vm2 = vm_lines(write_run(spec, tmp_path))
    assert vm2[-1]["event"] != "stop" and vm2[-1]["timestamp"] <= killed_at
    received = {
        line["msg_id"] for line in vm0 + vm1 if line["event"] == "receive" and line["from"] == 2
    }
    on_the_wire = [  # sent less than `delay` before the kill: it would arrive after
        m
        for line in vm2
        if line["event"] == "send" and line["timestamp"] > killed_at - spec.delay
        for m in line["msg_ids"]
    ]
    assert received and on_the_wire and not received & set(on_the_wire)
    assert vm0[-1]["event"] == vm1[-1]["event"] == "stop"  # the others go on to the end
    after = [
        m
        for line in vm0 + vm1
        if line["event"] == "send" and line["timestamp"] >= killed_at
        for to, m in zip(line["to"], line["msg_ids"], strict=True)
        if to == 2
    ]
    # nothing listens on a killed VM's port: what a loss condition left is refused
    lost = {line["msg_id"] for line in vm0 + vm1 if line.get("kind") == "loss"}
    refused = {line["msg_id"] for line in vm0 + vm1 if line["event"] == "send_failed"}
    assert after and set(after) - lost <= refused


def test_a_killed_vm_started_again_resumes_its_clocks_and_the_run_is_valid(
    tmp_path: Path,
) -> None:
    spec = msgspec.structs.replace(FAULTY, delay=0.5, kill=Kill(vm=2, at=15.0, down_for=2.0))
    run_dir = write_run(spec, tmp_path)
    *_, killed, restarted = vm_lines(run_dir)
    assert [line["incarnation"] for line in (killed[-1], restarted[0])] == [0, 1]
    for clock in ("lamport", "vc"):
        assert restarted[0][clock] == killed[-1][clock]
    assert restarted[1]["resumed"] is True and restarted[-1]["event"] == "stop"
    first_tick = next(line["tick"] for line in restarted if "tick" in line)
    assert first_tick > killed[-1]["tick"] + 1  # the ticks it was down for are gone
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]
