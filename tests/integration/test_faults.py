"""Fault schedules on the docker backend: clocks stay valid, messages stay accounted for."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from matplotlib.figure import Figure
from session import OURS, labelled

from analysis.check import Verdict, check_trial
from analysis.check.accounting import account
from analysis.load import load_trial
from analysis.metrics.traces import traces
from analysis.report.plots import plot_clocks
from orchestrator.engine import LABEL_VM

pytestmark = pytest.mark.docker

# Links come back within a second or so (0.6 s after a heal, measured on a quiet machine);
# the bound leaves room for a loaded one. The tests print the figure each time.
BACK_WITHIN = 4.0  # seconds


def run_trial(tmp_path: Path, faults: list[dict[str, Any]], **settings: Any) -> Path:
    experiment = {
        "name": "faults", "vms": 3, "rate_range": [4, 6], "event_range": 5,
        "duration": 40, "trials": 1, "seed": 3, "time_scale": 10, "faults": faults,
    } | settings  # fmt: skip
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(experiment))
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker"]
    command += ["--experiment", str(path), "--out", str(tmp_path / "runs")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return tmp_path / "runs" / "faults" / "trial-1"


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for p in sorted((run_dir / "logs").glob("*.jsonl"))
        for line in p.open("rb")
    ]


def assert_valid_and_accounted(run_dir: Path) -> None:
    trial = load_trial(run_dir)
    result = check_trial(trial)
    assert result.verdict == Verdict.VALID, [str(v) for v in result.examples]
    assert account(trial).balanced


def fault_record(run_dir: Path, kind: str) -> dict[str, Any]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (record,) = [f for f in manifest["faults"] if f["kind"] == kind]
    assert "errors" not in record, record
    return record


def test_a_killed_vm_restarts_as_a_new_incarnation_and_rejoins(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    run_dir = run_trial(tmp_path, [{"kind": "kill", "at": 10, "duration": 10, "target": 1}])
    assert_valid_and_accounted(run_dir)
    restarted = fault_record(run_dir, "kill")["end"]
    log = lines(run_dir)
    second = [r for r in log if r["vm"] == 1 and r["incarnation"] == 1]
    assert second[0]["event"] == "start" and second[-1]["event"] == "stop"
    first_life = [r for r in log if r["vm"] == 1 and r["incarnation"] == 0]
    assert second[0]["lamport"] >= first_life[-1]["lamport"]  # clocks resume, never go back
    rejoined = [
        r["timestamp"] for r in log if r["event"] == "peer_up" and r["timestamp"] > restarted
    ]
    ups = {
        (r["vm"], r["peer"]) for r in log if r["event"] == "peer_up" and r["timestamp"] > restarted
    }
    assert {(1, 0), (1, 2), (0, 1), (2, 1)} <= ups
    print(f"rejoin after restart: {max(rejoined) - restarted:.3f} s")
    assert max(rejoined) - restarted < BACK_WITHIN


def test_a_paused_vm_catches_up_on_its_missed_ticks(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    run_dir = run_trial(tmp_path, [{"kind": "pause", "at": 10, "duration": 10, "target": 2}])
    assert_valid_and_accounted(run_dir)
    fault_record(run_dir, "pause")
    behind = [r for r in lines(run_dir) if r["vm"] == 2 and "behind_s" in r]
    assert behind and max(r["behind_s"] for r in behind) > 0.5  # 10 simulated s = 1 real s
    stop = next(r for r in lines(run_dir) if r["vm"] == 2 and r["event"] == "stop")
    assert stop["ticks"] == round(
        40 * json.loads((run_dir / "manifest.json").read_text())["rates"][2]
    )


def test_after_a_10_s_partition_heals_every_link_comes_back(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    partition = {"kind": "partition", "at": 10, "duration": 20, "groups": [[0], [1, 2]]}
    run_dir = run_trial(tmp_path, [partition], duration=40, time_scale=2)  # 10 real s cut
    assert_valid_and_accounted(run_dir)
    record = fault_record(run_dir, "partition")
    log = lines(run_dir)
    downs = {
        (r["vm"], r["peer"])
        for r in log
        if r["event"] == "peer_down" and record["start"] < r["timestamp"] < record["end"]
    }
    assert {(0, 1), (0, 2), (1, 0), (2, 0)} <= downs  # the cut was seen from both sides
    back: dict[tuple[int, int], float] = {}
    for r in log:
        if r["event"] == "peer_up" and r["timestamp"] > record["end"]:
            back.setdefault((r["vm"], r["peer"]), r["timestamp"] - record["end"])
    assert {(0, 1), (0, 2), (1, 0), (2, 0)} <= set(back)
    print(f"links back after heal: max {max(back.values()):.3f} s")
    assert max(back.values()) < BACK_WITHIN


def test_a_partition_cuts_the_links_across_it_and_no_link_within_a_side(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    partition = {"kind": "partition", "at": 10, "duration": 20, "groups": [[0, 1], [2, 3]]}
    run_dir = run_trial(tmp_path, [partition], vms=4, duration=40, time_scale=2)
    assert_valid_and_accounted(run_dir)
    record = fault_record(run_dir, "partition")
    log = lines(run_dir)
    downs = {(r["vm"], r["peer"]) for r in log if r["event"] == "peer_down"}
    within = {(0, 1), (1, 0), (2, 3), (3, 2)}
    assert not downs & within  # a side's own links never notice the cut
    across = {(a, b) for a in (0, 1) for b in (2, 3)}
    across |= {(b, a) for a, b in across}
    cut = {
        (r["vm"], r["peer"])
        for r in log
        if r["event"] == "peer_down" and record["start"] < r["timestamp"] < record["end"]
    }
    assert across <= cut
    back = {
        (r["vm"], r["peer"])
        for r in log
        if r["event"] == "peer_up" and r["timestamp"] > record["end"]
    }
    assert across <= back
    assert labelled(docker_client) == []  # the helpers beside the VMs are gone too


def test_link_conditions_lose_duplicate_and_delay_messages_all_accounted_for(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    faults = [
        {"kind": "loss", "at": 5, "duration": 10, "probability": 0.3},
        {"kind": "duplicate", "at": 15, "duration": 10, "probability": 0.3, "links": [[0, 1]]},
        {"kind": "delay", "at": 25, "duration": 10, "delay": {"dist": "exponential", "mean": 1.0}},
    ]
    run_dir = run_trial(
        tmp_path, faults, network={"delay": {"dist": "uniform", "low": 0, "high": 0.1}}
    )
    assert_valid_and_accounted(run_dir)
    log = lines(run_dir)
    lost = {r["msg_id"] for r in log if r["event"] == "fault" and r["kind"] == "loss"}
    doubled = {r["msg_id"] for r in log if r["event"] == "fault" and r["kind"] == "duplicate"}
    received = [r["msg_id"] for r in log if r["event"] == "receive"]
    assert lost and not lost & set(received)
    assert doubled and any(received.count(m) == 2 for m in doubled)


def test_vm_containers_run_locked_down(docker_client: Any, vm_image: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker"]
    command += ["--duration", "600", "--time-scale", "10", "--out", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        vms = {"label": [OURS, LABEL_VM]}  # the VMs, not a helper beside them
        while len(containers := docker_client.containers.list(filters=vms)) < 3:
            assert time.monotonic() < deadline, "the trial's containers never came up"
            time.sleep(0.2)
        for container in containers:
            container.reload()
            host, config = container.attrs["HostConfig"], container.attrs["Config"]
            assert config["User"] not in ("", "0", "root") and not config["User"].startswith("0:")
            assert host["ReadonlyRootfs"] is True
            assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
            assert any("no-new-privileges" in opt for opt in host["SecurityOpt"])
            assert not host["PortBindings"] and not host["Privileged"]
            networks = container.attrs["NetworkSettings"]["Networks"]
            (network,) = networks
            assert network.startswith("clocklab-original-t1-") and network.endswith("_lab")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_faults_experiment_runs_every_fault_and_stays_valid(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker"]
    command += ["--experiment", "faults", "--time-scale", "5", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "faults" / "trial-1"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    kinds = sorted(f["kind"] for f in manifest["faults"])
    assert kinds == ["delay", "duplicate", "kill", "loss", "partition", "pause"]
    for fault in manifest["faults"]:
        assert fault["start"] <= fault["end"] and not fault.get("errors"), fault
    trial = load_trial(run_dir)
    check = check_trial(trial)
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    assert (run_dir / "logs" / "vm1.1.jsonl").exists()  # the killed VM's next incarnation
    assert labelled(docker_client) == []
    # The report's clock figure shades every window where the fault really happened, in
    # simulated seconds, and none began before its scheduled time.
    figure = Figure()
    ax = figure.add_subplot()
    plot_clocks(ax, traces(trial))
    shaded = sorted((p.get_x(), p.get_x() + p.get_width()) for p in ax.patches)
    happened = sorted(
        (
            float(trial.sim_time(np.array([f["start"]]))[0]),
            float(trial.sim_time(np.array([f["end"]]))[0]),
            f["at"],
        )
        for f in manifest["faults"]
    )
    assert len(shaded) == len(happened)
    for (start, end), (began, ended, scheduled) in zip(shaded, happened, strict=True):
        assert start == pytest.approx(began, abs=0.01) and end == pytest.approx(ended, abs=0.01)
        assert began >= scheduled - 0.05  # the agreed start is rounded; a fault is never early
    report = tmp_path / "report.html"
    made = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "report", str(run_dir), "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0 and report.stat().st_size > 0, made.stderr
