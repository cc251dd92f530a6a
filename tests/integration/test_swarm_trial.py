"""Trials on Docker Swarm: `docker stack deploy`, logs from the service logs.

Where the engine is in no swarm, a one-node swarm is made for these tests and
left again afterwards (with the docker_gwbridge network it brings); an engine
already in a swarm is left as it was.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from ticking import wait_until_ticking

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.backends.swarm import SwarmBackend
from orchestrator.backends.swarm.docker_stack import StackCli
from orchestrator.backends.swarm.stack import LABEL_STACK, Stack, Swarm
from orchestrator.engine import LABEL_RUN, connect_from_env
from orchestrator.experiment import Experiment
from orchestrator.image import IMAGE
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial

pytestmark = pytest.mark.docker

GWBRIDGE = "docker_gwbridge"  # made by the first swarm task on a host, kept after leaving


def clocklab_up(out: Path, duration: int, time_scale: int) -> list[str]:
    return [
        sys.executable, "-m", "orchestrator.cli", "up", "--backend", "swarm",
        "--duration", str(duration), "--time-scale", str(time_scale), "--out", str(out),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def swarm(docker_client: Any) -> Iterator[Any]:
    """The engine as a swarm manager: made one here if it is in no swarm, and left after."""
    state = (docker_client.info().get("Swarm") or {}).get("LocalNodeState")
    if state == "active":
        if not docker_client.info()["Swarm"].get("ControlAvailable"):
            pytest.skip("this engine is a swarm worker; the swarm tests need a manager")
        yield docker_client
        return
    had_gwbridge = bool(docker_client.networks.list(names=[GWBRIDGE]))
    _init(docker_client)
    try:
        yield docker_client
    finally:
        docker_client.swarm.leave(force=True)
        if not had_gwbridge:
            for network in docker_client.networks.list(names=[GWBRIDGE]):
                network.remove()


def _init(client: Any) -> None:
    from docker.errors import APIError

    try:
        client.swarm.init()
    except APIError as e:  # several addresses: any will do for one node
        if "advertise" not in str(e):
            raise
        client.swarm.init(advertise_addr="127.0.0.1")


def leftovers(client: Any, run: str, stack: str) -> list[str]:
    """What is left of the trial `run` and of its stack: services, containers, networks.

    (By label: another trial on the same engine meanwhile is none of these tests' business.)
    """
    found: list[str] = []
    for label in (f"{LABEL_RUN}={run}", f"{LABEL_STACK}={stack}"):
        found += [f"service {s.name}" for s in client.services.list(filters={"label": label})]
        containers = client.containers.list(all=True, filters={"label": label})
        found += [f"container {c.name}" for c in containers]
        found += [f"network {n.name}" for n in client.networks.list(filters={"label": label})]
    return found


def test_clocklab_up_runs_a_valid_trial_on_swarm_and_removes_the_stack(
    swarm: Any, vm_image: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        clocklab_up(tmp_path, 30, 30), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "original" / "trial-1"
    assert result.stdout.strip().endswith(str(run_dir))
    check = check_trial(load_trial(run_dir))
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    assert check.messages > 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["outcome"] == "completed"
    environment = manifest["environment"]
    assert environment["backend"] == "swarm"
    assert environment["stack"].startswith("clocklab-original-t1-")
    assert environment["image"] == vm_image and "log_anomalies" not in environment
    stack = (run_dir / "compose.yaml").read_text()
    assert "endpoint_mode: dnsrr" in stack and "condition: none" in stack
    lines = [
        orjson.loads(line)
        for path in sorted((run_dir / "logs").glob("vm*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    linked = {(line["vm"], line["peer"]) for line in lines if line["event"] == "peer_up"}
    assert linked == {(i, j) for i in range(3) for j in range(3) if i != j}  # by name: vm<j>
    assert leftovers(swarm, manifest["run"], manifest["environment"]["stack"]) == []


def test_ctrl_c_during_a_swarm_trial_stops_the_vms_keeps_every_line_and_removes_the_stack(
    swarm: Any, vm_image: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        clocklab_up(tmp_path, 600, 10), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    log = tmp_path / "original" / "trial-1" / "logs" / "vm0.jsonl"
    wait_until_ticking(proc, log.parent.parent)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=90)
    assert proc.returncode == 1
    manifest = json.loads((log.parent.parent / "manifest.json").read_text())
    assert manifest["outcome"] == "interrupted"
    for path in log.parent.glob("vm*.jsonl"):
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        assert [line["seq"] for line in lines] == list(range(len(lines)))
        assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "signal"
    assert leftovers(swarm, manifest["run"], manifest["environment"]["stack"]) == []


def test_a_node_without_the_image_is_named_with_the_command_that_ships_it(
    swarm: Any, vm_image: str, tmp_path: Path
) -> None:
    elsewhere = "sha256:" + "0" * 64  # an image no node has
    plan = plan_trial(Experiment(name="original", duration=10, time_scale=10), 1)
    engine = connect_from_env()
    cli = StackCli(engine.endpoint)
    shared = Swarm(engine, elsewhere, IMAGE, cli, cli.version())
    result = Trial(plan, lambda p, d: SwarmBackend(Stack(p, d, shared)), tmp_path).run()
    assert result.outcome == "failed"
    assert result.error is not None and "is not on node" in result.error
    assert "`clocklab cluster join ssh://USER@NODE ...`, which loads clocklab-vm:latest" in (
        result.error
    )
    assert leftovers(swarm, plan.run, plan.project) == []
