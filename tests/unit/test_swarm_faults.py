"""Faults on Swarm without Docker: what a restarted VM is handed, what a cluster refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.backends import (
    HostCrashable,
    HostPartitionable,
    Killable,
    Partitionable,
    Pausable,
    offered_faults,
)
from orchestrator.backends.swarm import SwarmBackend
from orchestrator.backends.swarm.node_faults import RESUME_ENV, NodeEngines, SwarmNodeFaults
from orchestrator.backends.swarm.tasks import Node
from orchestrator.cluster.backend import ClusterSwarmBackend
from orchestrator.cluster.layout import Layout
from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment
from orchestrator.faults import parse_faults
from orchestrator.plan import plan_trial
from vm_node.config import NodeConfig
from vm_node.rundir import RunDir


class FakeCli:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, str]]] = []

    def start_again(self, service: str, env: dict[str, str]) -> None:
        self.started.append((service, env))


def test_only_the_backends_with_node_engines_or_hosts_offer_faults() -> None:
    assert offered_faults(SwarmBackend) == []
    assert offered_faults(SwarmNodeFaults) == ["kill", "pause"]
    assert offered_faults(ClusterSwarmBackend) == [
        "kill",
        "pause",
        "partition",
        "host_partition",
        "host_crash",
    ]
    for capability in (Killable, Pausable, Partitionable, HostPartitionable, HostCrashable):
        assert issubclass(ClusterSwarmBackend, capability)


def test_a_vm_started_again_is_handed_its_next_incarnation_and_last_clocks(
    tmp_path: Path,
) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.logs.mkdir(parents=True)
    lines = [
        {"event": "ready", "lamport": 0, "vc": {}, "start_at": 1000.0},
        {"event": "send", "lamport": 4, "vc": {"0": 1, "1": 4}},
    ]
    run_dir.log_path(1).write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    backend = object.__new__(SwarmNodeFaults)
    backend._run_dir = run_dir
    backend._plan = plan_trial(Experiment(name="x", vms=3), 1)
    backend._services = {"svc0": 0, "svc1": 1}
    backend._task_ids = {1: "task-a"}
    backend._tasks = {1: {"ID": "task-a"}}
    backend._retired = set()
    backend.cli = FakeCli()  # type: ignore[assignment]

    backend.start_again(1)

    ((service, env),) = backend.cli.started  # type: ignore[attr-defined]
    assert service == "svc1" and backend._retired == {"task-a"} and 1 not in backend._tasks
    handed = NodeConfig.from_env({"CLOCKLAB_VM": "1", RESUME_ENV: env[RESUME_ENV]}).resume
    assert handed is not None and handed.incarnation == 1
    assert (handed.resume.lamport, handed.resume.vector) == (4, (1, 4, 0))
    assert handed.resume.start_at == 1000.0
    assert json.loads(env[RESUME_ENV])["incarnation"] == 1


def cluster(nodes: int = 3) -> ClusterSwarmBackend:
    backend = object.__new__(ClusterSwarmBackend)
    backend.nodes = [Node(f"id{i}", f"host{i}") for i in range(nodes)]
    backend.layout = Layout(hosts=nodes)
    return backend


def check(schedule: list[dict[str, Any]], vms: int = 6) -> None:
    backend = cluster()
    for i, fault in enumerate(parse_faults(schedule, vms, None)):
        backend._check(f"faults[{i}]", fault, vms)


def test_a_partition_of_whole_hosts_passes_and_one_splitting_a_host_is_refused() -> None:
    check([{"kind": "partition", "at": 1, "duration": 1, "groups": [[0, 3, 1, 4], [2, 5]]}])
    with pytest.raises(ConfigError, match=r"faults\[0\]\.groups: .*\[0, 1, 4\] is not every VM"):
        check([{"kind": "partition", "at": 1, "duration": 1, "groups": [[0, 1, 4], [2, 3, 5]]}])
    with pytest.raises(ConfigError, match=r"places every VM; \[2, 5\] in none"):
        check([{"kind": "partition", "at": 1, "duration": 1, "groups": [[0, 3], [1, 4]]}])


def test_a_host_fault_must_name_a_node_and_the_manager_cannot_crash() -> None:
    check([{"kind": "host_crash", "at": 1, "duration": 1, "host": 2}])
    with pytest.raises(ConfigError, match=r"faults\[0\]\.host: must be a host in 0\.\.2"):
        check([{"kind": "host_partition", "at": 1, "duration": 1, "host": 3}])
    with pytest.raises(ConfigError, match="host 0 is the swarm manager"):
        check([{"kind": "host_crash", "at": 1, "duration": 1, "host": 0}])


def test_node_engines_are_the_contexts_named_after_the_manager_and_the_node(
    tmp_path: Path,
) -> None:
    engines = NodeEngines("prod", "s1", {"DOCKER_CONFIG": str(tmp_path)})
    assert engines.context("node-a") == "prod-node-a"
    assert engines.missing([Node("1", "node-a")]) == ["prod-node-a"]
