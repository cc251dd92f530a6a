"""Trials in real containers: the rendered stack under testcontainers, and the docker backend.

The first test brings clocklab's rendered Compose stack up through testcontainers'
`DockerCompose`, waiting on the VMs' log lines: it tests the stack file itself. The
others run `clocklab up` as a user would, because what they test is the orchestrator's
own path: its teardown on Ctrl-C, its project names side by side, `clocklab down`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from session import SESSION, labelled
from testcontainers.compose import DockerCompose
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget
from ticking import wait_until_ticking

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.auth import TrialKey
from orchestrator.backends.compose import VM_UID
from orchestrator.backends.compose.render import render_stack, write_stack
from orchestrator.engine import LABEL_RUN, LABEL_SESSION
from orchestrator.experiment import load_experiment
from orchestrator.plan import plan_trial
from orchestrator.poll import poll
from vm_node.rundir import Manifest, Outcome, RunDir

pytestmark = pytest.mark.docker


def clocklab(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]


def up(out: Path, duration: int, time_scale: int, *more: str) -> list[str]:
    """`clocklab up` on the docker backend."""
    timing = ("--duration", str(duration), "--time-scale", str(time_scale))
    return clocklab("up", "--backend", "docker", *timing, "--out", str(out), *more)


class VmLogged(WaitStrategy):
    """Waits until a VM's log (bind-mounted on the host) holds an `event` line."""

    def __init__(self, run_dir: RunDir, vm: int, event: str) -> None:
        super().__init__()
        self.log, self.needle = run_dir.log_path(vm), f'"event":"{event}"'.encode()

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        assert poll(self._holds, self._startup_timeout), f"{self.log.name}: no {self.needle!r}"

    def _holds(self) -> bool:
        return self.log.exists() and self.needle in self.log.read_bytes()


def test_the_rendered_stack_under_testcontainers_runs_a_valid_authenticated_trial(
    docker_client: Any, vm_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment, _ = load_experiment("original")
    plan = plan_trial(experiment.with_overrides(duration=60, time_scale=20), 1)
    run_dir = RunDir.of(tmp_path, plan.experiment.name, plan.trial)
    run_dir.empty()
    key = TrialKey.create(readable_by=VM_UID)
    labels = {LABEL_RUN: plan.run, LABEL_SESSION: SESSION}
    write_stack(render_stack(plan, vm_image, labels, key.path), run_dir.stack_file)
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", plan.project)  # DockerCompose has no option
    stack = DockerCompose(run_dir.path, compose_file_name=run_dir.stack_file.name, wait=False)
    stack.waiting_for({f"vm{i}": VmLogged(run_dir, i, "ready") for i in range(plan.vms)})
    try:
        stack.start()
        for vm in range(plan.vms):
            VmLogged(run_dir, vm, "stop").wait_until_ready(stack.get_container(f"vm{vm}", True))
        environments = [
            docker_client.containers.get(c.ID).attrs["Config"]["Env"]
            for c in stack.get_containers(include_all=True)
        ]
    finally:
        stack.stop()
        secret = key.path.read_text()
        key.remove()
    run_dir.write_manifest(
        Manifest(
            experiment=plan.experiment.name,
            trial=plan.trial,
            run=plan.run,
            rates=plan.rates,
            vms=plan.vms,
            time_scale=plan.experiment.time_scale,
            outcome=Outcome.COMPLETED,
        )
    )
    result = check_trial(load_trial(run_dir.path))
    assert result.verdict == Verdict.VALID, [str(v) for v in result.examples]
    assert result.messages > 0
    lines = [orjson.loads(line) for *_, path in run_dir.log_files() for line in path.open("rb")]
    assert all(line["config"]["auth"] is True for line in lines if line["event"] == "start")
    assert len([line for line in lines if line["event"] == "peer_up"]) >= 6  # all by name
    assert not [line for line in lines if line["event"] == "bad_frame"]
    assert secret not in run_dir.stack_file.read_text()
    assert not any(secret in variable for env in environments for variable in env)
    assert labelled(docker_client) == []


def test_clocklab_up_runs_a_valid_trial_in_containers_and_removes_them(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        up(tmp_path, 30, 30),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "original" / "trial-1"
    assert result.stdout.strip().endswith(str(run_dir))
    check = check_trial(load_trial(run_dir))
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["outcome"] == "completed"
    assert manifest["environment"]["image"].startswith("sha256:")
    assert manifest["environment"]["compose"].startswith("2")
    engine_host = manifest["node_offsets"]
    assert [o["phase"] for o in engine_host] == ["start", "end"]
    assert all(o["vms"] == [0, 1, 2] for o in engine_host)
    assert all(abs(o["offset"]) <= o["uncertainty"] + 1e-3 for o in engine_host)  # one kernel
    compose = (run_dir / "compose.yaml").read_text()
    assert "vm2:" in compose and "clocklab.run" in compose
    assert labelled(docker_client) == []


def test_ctrl_c_during_a_container_trial_removes_the_stack_and_keeps_the_logs(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        up(tmp_path, 600, 10),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    log = tmp_path / "original" / "trial-1" / "logs" / "vm0.jsonl"
    wait_until_ticking(proc, log.parent.parent)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 1
    manifest = json.loads((log.parent.parent / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted"
    for path in log.parent.glob("vm*.jsonl"):
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        assert lines[-1]["event"] == "stop"
    assert labelled(docker_client) == []


def test_two_trials_with_different_names_run_side_by_side(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    runs = [
        subprocess.Popen(
            clocklab(
                "up",
                "--backend",
                "docker",
                "--trial",
                str(trial),
                "--duration",
                "20",
                "--time-scale",
                "20",
                "--out",
                str(tmp_path),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for trial in (1, 2)
    ]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    for trial in (1, 2):
        assert (
            check_trial(load_trial(tmp_path / "original" / f"trial-{trial}")).verdict
            == Verdict.VALID
        )
    assert labelled(docker_client) == []


def test_clocklab_down_removes_what_a_crashed_run_left_and_names_it(
    docker_client: Any, vm_image: str
) -> None:
    crashed = f"crashed-{SESSION}"
    labels = {LABEL_RUN: crashed, LABEL_SESSION: SESSION}
    network = docker_client.networks.create(f"clocklab-{crashed}", labels=labels)
    container = docker_client.containers.create(vm_image, labels=labels, network=network.name)
    result = subprocess.run(
        clocklab("down", "--run", crashed, "--context", "default"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"run {crashed}" in result.stderr
    assert f"container {container.name}" in result.stderr
    assert f"network {network.name}" in result.stderr
    assert labelled(docker_client) == []


def test_clocklab_down_wants_to_be_told_what_to_remove() -> None:
    result = subprocess.run(clocklab("down"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--run" in result.stderr and "--all" in result.stderr
