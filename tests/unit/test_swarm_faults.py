"""Faults on Swarm without Docker: what a restarted VM is handed, what a cluster refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator import cli, commands
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
        backend.check_fault(f"faults[{i}]", fault, vms)


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


class FakeOuter:
    """This machine's engine as the cluster backend sees it: one network, host containers."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[str]] = {}
        network = type("Network", (), {"attrs": {"IPAM": {"Config": [{"Subnet": "10.9.0.0/24"}]}}})
        self.networks = type("Networks", (), {"get": lambda _, name: network})()
        outer = self

        class Container:
            def __init__(self, name: str) -> None:
                self.name = name

            def exec_run(self, command: list[str]) -> tuple[int, bytes]:
                outer.scripts.setdefault(self.name, []).append(command[-1])
                return 0, b""

        self.containers = type("Containers", (), {"get": lambda _, name: Container(name)})()


def test_a_partition_of_hosts_has_each_host_drop_the_other_groups_hosts_until_healed() -> None:
    backend = cluster()
    backend.outer = FakeOuter()
    backend._partitioned = []
    backend.partition(((0, 3, 1, 4), (2, 5)))
    scripts = backend.outer.scripts
    assert sorted(scripts) == ["clocklab-host0", "clocklab-host1", "clocklab-host2"]
    host2 = scripts["clocklab-host2"][0]
    assert "-s 10.9.0.10 -j DROP" in host2 and "-d 10.9.0.11 -j DROP" in host2
    assert "10.9.0.12" not in host2  # not its own address
    host0 = scripts["clocklab-host0"][0]
    assert "-s 10.9.0.12 -j DROP" in host0 and "10.9.0.11" not in host0  # host1 is on its side
    backend.heal()
    assert all(s[-1] == "iptables -F CLOCKLAB" for s in scripts.values())


def test_a_host_the_cluster_lacks_is_refused_with_exit_2_and_the_previous_run_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = RunDir(tmp_path / "runs" / "hosts" / "trial-1")
    previous.logs.mkdir(parents=True)
    files = {
        previous.manifest_path: '{"outcome": "completed"}\n',
        previous.log_path(0): '{"event":"stop"}\n',
        previous.orchestrator_log: '{"event":"fault_begin"}\n',
    }
    for path, text in files.items():
        path.write_text(text)
    experiment = tmp_path / "hosts.yaml"
    experiment.write_text(
        "name: hosts\nvms: 3\nrate_range: [1, 6]\nduration: 10\ntime_scale: 20\n"
        "faults: [{kind: host_crash, at: 1, duration: 1, host: 5}]\n"
    )
    monkeypatch.setattr(commands, "backend_factory", lambda *_: lambda: cluster(3))
    argv = ["up", "--backend", "swarm", "--experiment", str(experiment)]
    assert cli.main([*argv, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "faults[0].host: must be a host in 0..2 (the swarm has 3 nodes), got 5" in err
    assert {path: path.read_text() for path in files} == files
    assert sorted(p.name for p in previous.path.rglob("*")) == sorted(
        ["logs", "manifest.json", "orchestrator.log", "vm0.jsonl"]
    )
