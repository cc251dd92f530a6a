"""`--backend sim`: a plan's trial in virtual time, the run directory a real one writes."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from dataclasses import astuple
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

import analysis.metrics.sweep
import orchestrator.sweep
from analysis.check import Rule, Verdict, check_trial
from analysis.columns import TrialLog
from analysis.load import load_trial
from analysis.metrics.sweep import rows_under
from orchestrator import commands, sweep_command
from orchestrator.backends.sim import SimTrial, Simulated, sim_hosts
from orchestrator.cli import build_parser, main
from orchestrator.experiment import Experiment, load_experiment
from orchestrator.faults import parse_faults
from orchestrator.plan import plan_trial
from orchestrator.resources import shipped
from orchestrator.skew import Skew
from vm_node.peerlink import DEAD_AFTER
from vm_node.rundir import Outcome, RunDir
from vm_node.vocabulary import Message

SHIPPED = sorted(p.stem for p in shipped("experiments").glob("*.yaml"))


def digests(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every log and of orchestrator.log, by name."""
    files = [*sorted(RunDir(run_dir).logs.iterdir()), RunDir(run_dir).orchestrator_log]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


def lines(run_dir: Path, vm: int, incarnation: int = 0) -> list[dict[str, Any]]:
    path = RunDir(run_dir).log_path(vm, incarnation)
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def agreed_start(run_dir: Path) -> float:
    start_at: float = next(r for r in lines(run_dir, 0) if r["event"] == "ready")["start_at"]
    return start_at


def simulate(experiment: Experiment, out: Path, trial: int = 1) -> Path:
    result = SimTrial(plan_trial(experiment, trial), out).run()
    assert result.ok, result.error
    return result.run_dir.path


def valid(run_dir: Path, skew: float = 0.0) -> None:
    result = check_trial(load_trial(run_dir), skew=skew)
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]


def experiment(faults: list[dict[str, Any]], **fields: Any) -> Experiment:
    base = Experiment(name="simfaults", rates=(2.0, 3.0, 4.0), rate_range=None, duration=40.0)
    changed = msgspec.structs.replace(base, **fields)
    return msgspec.structs.replace(changed, faults=parse_faults(faults, changed.vms, None))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_experiment_writes_the_same_bytes_from_the_same_seed(
    tmp_path: Path, name: str
) -> None:
    e, _ = load_experiment(name)
    first = digests(simulate(e, tmp_path / "a"))
    assert first == digests(simulate(e, tmp_path / "b"))
    assert len(first) >= e.vms
    other = digests(simulate(e.with_overrides(seed=e.seed + 1), tmp_path / "c"))
    assert all(other[log] != digest for log, digest in first.items() if log.endswith(".jsonl"))
    valid(tmp_path / "a" / e.name / "trial-1")


def test_the_manifest_and_orchestrator_log_record_each_fault_in_virtual_time(
    tmp_path: Path,
) -> None:
    e, _ = load_experiment("faults")
    run_dir = simulate(e, tmp_path)
    manifest = RunDir(run_dir).read_manifest()
    assert (manifest.backend, manifest.outcome) == ("sim", Outcome.COMPLETED)
    start_at = agreed_start(run_dir)
    assert [f.kind for f in manifest.faults] == [f.kind for f in e.faults]
    for record, fault in zip(manifest.faults, e.faults, strict=True):
        assert record.start == pytest.approx(start_at + fault.at / e.time_scale)
        assert record.end == pytest.approx(start_at + fault.end / e.time_scale)
    logged = [
        orjson.loads(line) for line in RunDir(run_dir).orchestrator_log.read_bytes().splitlines()
    ]
    assert [line["event"] for line in logged].count("fault_begin") == len(e.faults)
    assert set(manifest.vm_summaries) == {"0", "1", "2"}
    # each VM's rate, as a real trial records it, but a paused VM's
    paused = sorted({vm for f in e.faults if f.kind == "pause" for vm in f.targets})
    assert paused and list(manifest.fidelity["paused"]) == paused
    assert manifest.fidelity["measured"] == 3 - len(paused)


def test_a_kill_ends_the_incarnation_and_its_peers_links_until_it_starts_again(
    tmp_path: Path,
) -> None:
    run_dir = simulate(
        experiment([{"kind": "kill", "at": 10, "duration": 5, "target": 1}]), tmp_path
    )
    killed, restarted = lines(run_dir, 1, 0), lines(run_dir, 1, 1)
    assert killed[-1]["event"] != "stop" and restarted[-1]["event"] == "stop"
    assert restarted[1]["resumed"] is True
    downs = [line for line in lines(run_dir, 0) if line["event"] in ("peer_down", "peer_up")]
    assert [(d["event"], d["peer"]) for d in downs[2:]] == [("peer_down", 1), ("peer_up", 1)]
    assert downs[2]["reason"] == "connection closed by peer"
    valid(run_dir)


def test_a_paused_vm_takes_what_waited_and_runs_its_missed_ticks_at_once(tmp_path: Path) -> None:
    run_dir = simulate(
        experiment([{"kind": "pause", "at": 10, "duration": 6, "target": 2}]), tmp_path
    )
    start_at = agreed_start(run_dir)
    paused = lines(run_dir, 2)
    ticks = [line for line in paused if "tick" in line]
    assert [t["tick"] for t in ticks] == list(range(160))  # every tick, none skipped
    burst = [t for t in ticks if t["timestamp"] == pytest.approx(start_at + 16.0, abs=1e-6)]
    assert len(burst) == 6 * 4  # six seconds of ticks at rate 4, run back to back
    assert all(t["behind_s"] > 0 for t in burst[:-1])
    assert burst[0]["queue_len"] > 0  # what peers sent while it was frozen
    for peer in (0, 1):  # six seconds of silence: the peers' links to it went down
        (down,) = [line for line in lines(run_dir, peer) if line["event"] == "peer_down"]
        assert down["reason"] == f"no answer for {DEAD_AFTER:g} s"
        assert down["timestamp"] == pytest.approx(start_at + 10 + DEAD_AFTER)
    result = check_trial(load_trial(run_dir))
    assert result.verdict is Verdict.VALID, [str(v) for v in result.examples]


def test_nothing_crosses_a_partition_and_its_links_go_down_until_it_heals(tmp_path: Path) -> None:
    cut = {"kind": "partition", "at": 10, "duration": 8, "groups": [[0], [1, 2]]}
    run_dir = simulate(experiment([cut]), tmp_path)
    start_at = agreed_start(run_dir)
    during = (start_at + 10.01, start_at + 18)
    for vm, others in ((0, (1, 2)), (1, (0,)), (2, (0,))):
        log = lines(run_dir, vm)
        heard = [
            r for r in log if r["event"] == "receive" and during[0] < r["timestamp"] < during[1]
        ]
        assert not [r for r in heard if r["from"] in others]
        downs = {r["peer"] for r in log if r["event"] == "peer_down"}
        assert downs == set(others)
        ups = [r for r in log if r["event"] == "peer_up" and r["timestamp"] > start_at]
        assert {r["peer"] for r in ups} == set(others)
        assert all(r["timestamp"] >= during[1] for r in ups)
    valid(run_dir)


def test_a_partition_shorter_than_a_links_patience_delays_what_crossed_it(
    tmp_path: Path,
) -> None:
    cut = {"kind": "partition", "at": 10, "duration": 1, "groups": [[0], [1, 2]]}
    run_dir = simulate(experiment([cut], event_range=3), tmp_path)
    healed = agreed_start(run_dir) + 11
    logs = [lines(run_dir, vm) for vm in range(3)]
    assert not [r for log in logs for r in log if r["event"] in ("peer_down", "send_failed")]
    crossed = {
        m
        for vm, log in enumerate(logs)
        for r in log
        if r["event"] == "send" and healed - 1 < r["timestamp"] < healed
        for to, m in zip(r["to"], r["msg_ids"], strict=True)
        if (vm == 0) != (to == 0)
    }
    received = {r["msg_id"]: r for log in logs for r in log if r["event"] == "receive"}
    assert crossed and crossed <= set(received)
    assert all(received[m]["timestamp"] >= healed for m in crossed)
    valid(run_dir)


def test_host_faults_act_on_every_vm_of_the_host(tmp_path: Path) -> None:
    faults = [
        {"kind": "host_crash", "at": 5, "duration": 5, "host": 1},
        {"kind": "host_partition", "at": 20, "duration": 5, "host": 0},
    ]
    e = experiment(faults, vms=4, rates=(2.0, 3.0, 4.0, 5.0))
    assert sim_hosts(plan_trial(e, 1)) == 2  # VM i on host i mod 2
    run_dir = simulate(e, tmp_path)
    crashed = sorted(p.name for p in RunDir(run_dir).logs.glob("*.1.jsonl"))
    assert crashed == ["vm1.1.jsonl", "vm3.1.jsonl"]
    cut_off = {
        r["peer"]
        for r in lines(run_dir, 0)
        if r["event"] == "peer_down" and r["timestamp"] > agreed_start(run_dir) + 20
    }
    assert cut_off == {1, 3}
    valid(run_dir)


def test_skew_moves_each_vms_timestamps_by_its_offset(tmp_path: Path) -> None:
    e = msgspec.structs.replace(experiment([]), skew=Skew(vms=((1, 0.5),)))
    run_dir = simulate(e, tmp_path)
    assert lines(run_dir, 1)[0]["config"]["clock_offset"] == 0.5
    ready = [next(r for r in lines(run_dir, vm) if r["event"] == "ready") for vm in (0, 1)]
    assert ready[1]["timestamp"] - ready[0]["timestamp"] == pytest.approx(0.5)
    valid(run_dir, skew=0.5)


def test_clocklab_trials_on_sim_runs_every_trial_and_each_checks_valid(tmp_path: Path) -> None:
    argv = ["trials", "--backend", "sim", "--experiment", "faults", "--trials", "3"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    runs = sorted((tmp_path / "faults").glob("trial-*"))
    assert len(runs) == 3
    assert main(["check", *map(str, runs)]) == 0


SWEEP = """\
name: simsweep
vms: 3
rate_range: [1, 6]
duration: 20
seed: 7
sweep:
  rate_range: [[1, 6], [4, 5]]
  event_range: [5]
  trials: 2
"""
BROKEN_CELL = "simsweep-r4-5-e5-n3"


def faulty_wire(msg: Message) -> Message:
    """A network that corrupts the clock of one message of one cell's trial 2."""
    if msg.run.startswith(f"{BROKEN_CELL}-t2-") and msg.msg_id.endswith("-3"):
        return msgspec.structs.replace(msg, lamport=msg.lamport + 1000)
    return msg


def test_a_sweep_names_the_seed_of_a_failed_check_and_up_reproduces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "simsweep.yaml"
    file.write_text(SWEEP)
    out = tmp_path / "sweep"
    args = build_parser().parse_args(["sweep", str(file), "--backend", "sim", "--out", str(out)])
    assert sweep_command.run(args, Simulated(faulty_wire)) == 1

    summary = json.loads((out / "sweep.json").read_text())
    (failed,) = summary["failed"]
    assert (failed["cell"], failed["trial"], failed["seed"]) == (BROKEN_CELL, 2, 7)
    assert failed["error"].startswith("check invalid")
    assert "reproduce: clocklab up --backend sim" in capsys.readouterr().err
    reproduce = failed["reproduce"].split()
    assert reproduce[:4] == ["clocklab", "up", "--backend", "sim"]
    assert sweep_command.run(args, Simulated(faulty_wire)) == 1  # again: nothing runs,
    resumed = json.loads((out / "sweep.json").read_text())  # yet the check still fails
    assert (resumed["ran"], resumed["failed"]) == (0, summary["failed"])

    again = tmp_path / "again"
    up_args = build_parser().parse_args([*reproduce[1:], "--out", str(again)])
    assert commands.up(up_args, Simulated(faulty_wire)) == 0
    swept = out / "trials" / BROKEN_CELL / "trial-2"
    rerun = again / BROKEN_CELL / "trial-2"
    assert digests(rerun) == digests(swept)
    result = check_trial(load_trial(rerun))
    assert result.verdict is Verdict.INVALID
    assert Rule.MESSAGE_CLOCK in dict(result.counts)


def test_up_refuses_a_cell_the_file_does_not_have(tmp_path: Path) -> None:
    file = tmp_path / "simsweep.yaml"
    file.write_text(SWEEP)
    argv = ["up", "--backend", "sim", "--experiment", str(file), "--cell", "simsweep-nope"]
    assert main([*argv, "--out", str(tmp_path)]) == 2


def test_a_sim_sweep_loads_each_trial_once_and_tables_what_a_fresh_load_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: Counter[Path] = Counter()

    def counted(run_dir: Path) -> TrialLog:
        loads[Path(run_dir).resolve()] += 1
        return load_trial(run_dir)

    monkeypatch.setattr(orchestrator.sweep, "load_trial", counted)
    monkeypatch.setattr(analysis.metrics.sweep, "load_trial", counted)
    file = tmp_path / "simsweep.yaml"
    file.write_text(SWEEP)
    out = tmp_path / "sweep"
    args = build_parser().parse_args(["sweep", str(file), "--backend", "sim", "--out", str(out)])
    for _ in range(2):  # the second run resumes: nothing runs, every trial is checked again
        loads.clear()
        assert sweep_command.run(args, Simulated()) == 0
        assert len(loads) == 4 and set(loads.values()) == {1}
        with (out / "vms.csv").open(newline="") as table:
            written = list(csv.reader(table))[1:]
        fresh = rows_under(out / "trials")
        assert written == [[str(value) for value in astuple(row)] for row in fresh]
        assert len(written) == 4 * 3
