"""Trials in real containers: the docker backend, Compose v2 and testcontainers."""

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
from ticking import wait_until_ticking

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.engine import LABEL_RUN, LABEL_SESSION

pytestmark = pytest.mark.docker

RUN = "tc-three-vms"


def clocklab(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]


def up(out: Path, duration: int, time_scale: int, *more: str) -> list[str]:
    """`clocklab up` on the docker backend."""
    timing = ("--duration", str(duration), "--time-scale", str(time_scale))
    return clocklab("up", "--backend", "docker", *timing, "--out", str(out), *more)


def test_three_vm_containers_talk_by_alias_and_write_valid_logs(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    logs = tmp_path / "logs"
    logs.mkdir(mode=0o777)
    logs.chmod(0o777)  # the VMs run as uid 10001
    labels = {LABEL_RUN: RUN, LABEL_SESSION: SESSION}
    with Network(docker_network_kw={"labels": labels}) as network:
        containers = [
            DockerContainer(vm_image)
            .with_network(network)
            .with_network_aliases(f"vm{i}")
            .with_envs(
                CLOCKLAB_VM=str(i),
                CLOCKLAB_VMS="3",
                CLOCKLAB_RATE=str(2 + i),
                CLOCKLAB_DURATION="20",
                CLOCKLAB_TIME_SCALE="20",
                CLOCKLAB_RUN=RUN,
                CLOCKLAB_PORT="5000",
                CLOCKLAB_LOG_DIR="/logs",
                CLOCKLAB_SEED=str(i),
            )
            .with_volume_mapping(str(logs), "/logs", "rw")
            .with_kwargs(labels=labels, read_only=True, cap_drop=["ALL"], init=True)
            for i in range(3)
        ]
        try:
            for container in containers:
                container.start()
            codes = [
                container.get_wrapped_container().wait(timeout=60)["StatusCode"]
                for container in containers
            ]
        finally:
            for container in containers:
                container.stop()
    assert codes == [0, 0, 0]
    (tmp_path / "manifest.json").write_text(
        json.dumps({"experiment": "tc", "trial": 1, "rates": [2, 3, 4]})
    )
    result = check_trial(load_trial(tmp_path))
    assert result.verdict == Verdict.VALID, [str(v) for v in result.examples]
    assert result.messages > 0
    lines = [orjson.loads(line) for path in logs.glob("*.jsonl") for line in path.open("rb")]
    peers_up = [line for line in lines if line["event"] == "peer_up"]
    assert len(peers_up) >= 6  # every VM reached both others by name


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
