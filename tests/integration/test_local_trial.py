"""Whole trials on the local backend: real processes, real sockets, real logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import orjson
import pytest
from ticking import wait_until_ticking

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.backends.local import LocalBackend, free_port_block
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial


def read_logs(run_dir: Path) -> dict[int, list[dict[str, object]]]:
    return {
        int(path.stem.removeprefix("vm")): [
            orjson.loads(line) for line in path.read_bytes().splitlines()
        ]
        for path in sorted((run_dir / "logs").glob("vm*.jsonl"))
    }


@pytest.fixture(scope="module")
def local_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    experiment = Experiment(name="original", duration=30, time_scale=30, seed=4)
    out = tmp_path_factory.mktemp("runs")
    backends = partial(LocalBackend, base_port=free_port_block(3, 21000))
    result = Trial(plan_trial(experiment, 1), backends, out).run()
    assert result.ok, result.error
    return result.run_dir.path


def test_a_local_trial_passes_every_clock_and_message_check(local_trial: Path) -> None:
    result = check_trial(load_trial(local_trial))
    assert result.verdict == Verdict.VALID, [str(v) for v in result.examples]
    assert result.messages > 0


def test_every_receive_matches_one_send_with_the_same_clock(local_trial: Path) -> None:
    logs = read_logs(local_trial)
    sent = {
        msg_id: (vm, line["lamport"])
        for vm, lines in logs.items()
        for line in lines
        if line["event"] == "send"
        for msg_id in line["msg_ids"]  # type: ignore[attr-defined]
    }
    receives = [line for lines in logs.values() for line in lines if line["event"] == "receive"]
    assert receives
    assert len({r["msg_id"] for r in receives}) == len(receives)  # none received twice
    for r in receives:
        sender, lamport = sent[r["msg_id"]]  # type: ignore[index]
        assert (r["from"], r["msg_lamport"]) == (sender, lamport)


def test_every_sent_message_is_received_or_still_queued(local_trial: Path) -> None:
    stops = [lines[-1] for lines in read_logs(local_trial).values()]
    assert all(stop["event"] == "stop" and stop["reason"] == "completed" for stop in stops)
    sent = sum(stop["sent"] for stop in stops)  # type: ignore[misc]
    accounted = sum(stop["received"] + stop["queue_len"] + stop["dropped"] for stop in stops)  # type: ignore[operator]
    assert sent == accounted


def test_the_vms_agree_on_one_start_and_tick_from_it(local_trial: Path) -> None:
    # How close together the first ticks land is measured by `make bench` (lateness).
    logs = read_logs(local_trial).values()
    starts = {
        next(line["start_at"] for line in lines if line["event"] == "ready") for lines in logs
    }
    assert len(starts) == 1
    (start_at,) = starts
    for lines in logs:
        first = next(line for line in lines if "tick" in line)
        assert first["tick"] == 0 and first["timestamp"] >= start_at  # type: ignore[operator]


def test_the_manifest_records_the_plan_and_the_outcome(local_trial: Path) -> None:
    manifest = json.loads((local_trial / "manifest.json").read_text())
    assert manifest["outcome"] == "completed"
    assert manifest["backend"] == "local" and len(manifest["rates"]) == 3
    assert manifest["started_at"] < manifest["first_tick_at"] < manifest["ended_at"]


def test_each_vm_ticks_its_whole_schedule_at_about_its_rate(local_trial: Path) -> None:
    # Precision is measured by `make bench`; this catches a wrong period or time scale.
    manifest = json.loads((local_trial / "manifest.json").read_text())
    for vm, lines in read_logs(local_trial).items():
        stop = lines[-1]
        assert stop["ticks"] == round(30 * manifest["rates"][vm])
        assert stop["rate_achieved"] == pytest.approx(manifest["rates"][vm], rel=0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_says_when_a_vm_strayed_beyond_the_rate_tolerance(tmp_path: Path) -> None:
    """A tolerance of 0: no VM keeps its rate exactly, so fidelity is lost and said so."""
    argv = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "local",
            "--duration", "10", "--time-scale", "10", "--out", str(tmp_path),
            "--rate-tolerance", "0"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "original" / "trial-1" / "manifest.json").read_text())
    fidelity = manifest["fidelity"]
    assert fidelity["held"] is False and fidelity["measured"] == 3
    assert fidelity["worst_error"] > 0 and fidelity["tolerance"] == 0
    assert f"fidelity lost: vm{fidelity['vm']} ran" in " ".join(done.stderr.split())


def test_ctrl_c_stops_every_vm_keeps_the_logs_and_marks_the_manifest(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "up",
        "--backend",
        "local",
        "--duration",
        "600",
        "--time-scale",
        "10",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_dir = tmp_path / "original" / "trial-1"
    wait_until_ticking(proc, run_dir, timeout=30)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert str(run_dir) in out.decode()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted"
    for lines in read_logs(run_dir).values():
        assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "signal"
    assert not any(_alive(pid) for pid in manifest["environment"]["pids"].values())
    base = manifest["environment"]["base_port"]
    assert free_port_block(3, base) == base  # every port released
