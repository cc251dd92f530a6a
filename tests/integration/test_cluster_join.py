"""Machines joined over ssh: three bare simulated hosts (sshd, an engine, nothing else) made a
cluster by `clocklab cluster join ssh://root@ADDRESS ...`, as a user joins real machines.

The docker CLI's config (contexts, join's record) is a folder of the test's own
(DOCKER_CONFIG), and so is the ssh client's (bench.ssh_access): the user's are
untouched. The hosts carry this test session's label and are removed in `finally`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from bench.ssh_access import SshAccess
from orchestrator.cluster import hosts
from orchestrator.cluster.layout import Layout

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BARE = Layout(hosts=3, name="clocklab-joinable", bare=True)
CLUSTER = [sys.executable, "-m", "orchestrator.cli", "cluster"]
KILL_AND_PAUSE = """
name: joined
vms: 6
rate_range: [1, 6]
event_range: 10
duration: 40
time_scale: 2
seed: 2026
faults:
  - {kind: kill, at: 8, duration: 6, target: 1}
  - {kind: pause, at: 20, duration: 6, target: 2}
"""


def run(command: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run `command`; its stderr (where clocklab reports), after asserting it succeeded."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stderr


def swarm_state(outer: Any, host: int) -> str:
    container = outer.containers.get(BARE.host(host).container)
    code, out = container.exec_run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"])
    assert code == 0, out
    return str(out.decode().strip())


def test_bare_hosts_joined_over_ssh_run_a_trial_with_kill_and_pause_and_leave_as_found(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    if hosts.host_containers(docker_client):
        pytest.skip("a simulated cluster exists here: its hosts take the names this test needs")
    ssh = SshAccess(tmp_path / "ssh")
    docker_config = tmp_path / "docker"
    env = ssh.env(os.environ) | {"DOCKER_CONFIG": str(docker_config)}
    bare = ["--name", BARE.name]
    try:
        key = ["--authorized-key", str(ssh.public_key)]
        run([*CLUSTER, "up", "--bare", "--hosts", "3", *key, *bare], env)
        assert [swarm_state(docker_client, i) for i in range(3)] == ["inactive"] * 3
        machines = tmp_path / "machines"
        addresses = [hosts.host_address(docker_client, BARE, h) for h in BARE.all_hosts()]
        machines.write_text("".join(f"ssh://root@{a}  # host\n" for a in addresses))

        joined = run([*CLUSTER, "join", "--hosts-file", str(machines)], env)
        assert "swarm made on host0" in joined
        assert "into host0, host1, host2" in joined  # the image shipped by clocklab
        for host in BARE.all_hosts():  # over each host's own engine, the same image
            inner = docker_client.containers.get(host.container)
            code, out = inner.exec_run(["docker", "image", "inspect", "-f", "{{.Id}}", vm_image])
            assert code == 0 and out.decode().strip() == vm_image
        status = run([*CLUSTER, "status"], env)
        assert status.count("worker ready") == 2 and "manager ready" in status

        experiment = tmp_path / "joined.yaml"
        experiment.write_text(KILL_AND_PAUSE)
        trial = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "swarm"]
        trial += ["--context", "clocklab-cluster", "--experiment", str(experiment)]
        run([*trial, "--out", str(tmp_path / "runs")], env, timeout=300)
        (run_dir,) = (tmp_path / "runs").glob("*/trial-1")
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["environment"]["placement"] == {str(v): f"host{v % 3}" for v in range(6)}
        assert [f["kind"] for f in manifest["faults"]] == ["kill", "pause"]
        assert all("errors" not in fault for fault in manifest["faults"]), manifest["faults"]
        assert "cluster" not in manifest["environment"]  # real machines: no simulated cluster
        check = check_trial(load_trial(run_dir), skew=0.005)
        assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]

        again = run([*CLUSTER, "join", "--hosts-file", str(machines)], env)
        assert "loading" not in again and "swarm made" not in again and "host1 joined" not in again

        down = run([*CLUSTER, "down"], env)
        assert "swarm on host0 dissolved" in down
        assert [swarm_state(docker_client, i) for i in range(3)] == ["inactive"] * 3
        contexts = subprocess.run(
            ["docker", "context", "ls", "--format", "{{.Name}}"],
            capture_output=True, text=True, env=env, check=True,
        ).stdout.split()  # fmt: skip
        assert contexts == ["default"]
        assert not (docker_config / "clocklab").exists()
    finally:
        run([*CLUSTER, "down"], env)
        run([*CLUSTER, "down", *bare], env)
    assert hosts.cluster_containers(docker_client, BARE.name) == []
