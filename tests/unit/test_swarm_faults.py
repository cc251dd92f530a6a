"""Faults on Swarm without Docker: what a restarted VM is handed, what a cluster refuses,
and what the backend says when a node's context is missing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator import backend_choice, cli, commands
from orchestrator.backends import (
    HostCrashable,
    HostPartitionable,
    Killable,
    Partitionable,
    Pausable,
    offered_faults,
)
from orchestrator.backends.swarm import SwarmBackend
from orchestrator.backends.swarm.docker_stack import StackCli
from orchestrator.backends.swarm.node_engines import NodeEngines
from orchestrator.backends.swarm.node_faults import NodeFaults
from orchestrator.backends.swarm.stack import RESUME_ENV, Stack, Swarm
from orchestrator.backends.swarm.tasks import Node
from orchestrator.cluster.backend import HostFaults
from orchestrator.cluster.layout import Layout
from orchestrator.engine import Endpoint, Engine
from orchestrator.errors import BackendUnavailable, ConfigError
from orchestrator.events import Event, Notice
from orchestrator.experiment import Experiment
from orchestrator.faults import parse_faults
from orchestrator.plan import TrialPlan, plan_trial
from vm_node.config import NodeConfig
from vm_node.rundir import RunDir


class FakeCli:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, str]]] = []

    def start_again(self, service: str, env: dict[str, str]) -> None:
        self.started.append((service, env))


class FakeManager:
    """A swarm manager's engine as the stack reads it on construction: its nodes."""

    def __init__(self, hostnames: list[str]) -> None:
        attrs = [
            {
                "ID": f"id-{name}",
                "Description": {"Hostname": name},
                "Status": {"State": "ready"},
                "Spec": {"Availability": "active"},
            }
            for name in hostnames
        ]
        nodes = [type("Node", (), {"attrs": a})() for a in attrs]
        self.nodes = type("Nodes", (), {"list": lambda _: nodes})()

    def info(self) -> dict[str, Any]:
        return {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}


def engine_of(hostnames: list[str], context: str | None = "prod") -> Engine:
    return Engine(FakeManager(hostnames), Endpoint("ssh://manager", context), "s1")


def stack_on(hosts: int, tmp_path: Path, plan: TrialPlan | None = None, cli: Any = None) -> Stack:
    engine = engine_of([f"host{i}" for i in range(hosts)])
    swarm = Swarm(engine, "sha256:abc", "clocklab-vm:latest", cli or FakeCli(), "27.0")
    plan = plan or plan_trial(Experiment(name="x", vms=2 * hosts), 1)
    return Stack(plan, RunDir(tmp_path / "x" / "trial-1"), swarm)


def test_the_swarm_backend_offers_the_faults_of_the_parts_it_is_made_with(
    tmp_path: Path,
) -> None:
    stack = stack_on(3, tmp_path)
    nodes = NodeFaults(stack, NodeEngines("prod", "s1"))
    hosts = HostFaults(stack, Layout(hosts=3), outer=None)
    assert offered_faults(SwarmBackend(stack)) == []
    assert offered_faults(SwarmBackend(stack, (nodes,))) == ["kill", "pause"]
    on_cluster = SwarmBackend(stack, (nodes, hosts))
    assert offered_faults(on_cluster) == [
        "kill",
        "pause",
        "partition",
        "host_partition",
        "host_crash",
    ]
    assert isinstance(nodes, Killable) and isinstance(nodes, Pausable)
    for capability in (Partitionable, HostPartitionable, HostCrashable):
        assert isinstance(hosts, capability)


def test_a_vm_started_again_is_handed_its_next_incarnation_and_last_clocks(
    tmp_path: Path,
) -> None:
    fake = FakeCli()
    stack = stack_on(3, tmp_path, plan_trial(Experiment(name="x", vms=3), 1), fake)
    stack.run_dir.logs.mkdir(parents=True)
    lines = [
        {"event": "ready", "lamport": 0, "vc": {}, "start_at": 1000.0},
        {"event": "send", "lamport": 4, "vc": {"0": 1, "1": 4}},
    ]
    stack.run_dir.log_path(1).write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    stack._services = {"svc0": 0, "svc1": 1}  # as a deploy leaves them
    stack._task_ids = {1: "task-a"}
    stack._tasks = {1: {"ID": "task-a"}}

    stack.start_again(1)

    ((service, env),) = fake.started
    assert service == "svc1" and stack._retired == {"task-a"} and 1 not in stack._tasks
    handed = NodeConfig.from_env({"CLOCKLAB_VM": "1", RESUME_ENV: env[RESUME_ENV]}).resume
    assert handed is not None and handed.incarnation == 1
    assert (handed.resume.lamport, handed.resume.vector) == (4, (1, 4, 0))
    assert handed.resume.start_at == 1000.0
    assert json.loads(env[RESUME_ENV])["incarnation"] == 1


def host_faults(tmp_path: Path, hosts: int = 3, outer: Any = None) -> HostFaults:
    return HostFaults(stack_on(hosts, tmp_path), Layout(hosts=hosts), outer)


def check(tmp_path: Path, schedule: list[dict[str, Any]], vms: int = 6) -> None:
    hosts = host_faults(tmp_path)
    for i, fault in enumerate(parse_faults(schedule, vms, None)):
        hosts.check_fault(f"faults[{i}]", fault, vms)


def test_a_partition_of_whole_hosts_passes_and_one_splitting_a_host_is_refused(
    tmp_path: Path,
) -> None:
    def partition(*groups: list[int]) -> list[dict[str, Any]]:
        return [{"kind": "partition", "at": 1, "duration": 1, "groups": list(groups)}]

    check(tmp_path, partition([0, 3, 1, 4], [2, 5]))
    with pytest.raises(ConfigError, match=r"faults\[0\]\.groups: .*\[0, 1, 4\] is not every VM"):
        check(tmp_path, partition([0, 1, 4], [2, 3, 5]))
    with pytest.raises(ConfigError, match=r"places every VM; \[2, 5\] in none"):
        check(tmp_path, partition([0, 3], [1, 4]))


def test_a_host_fault_must_name_a_node_and_the_manager_cannot_crash(tmp_path: Path) -> None:
    check(tmp_path, [{"kind": "host_crash", "at": 1, "duration": 1, "host": 2}])
    with pytest.raises(ConfigError, match=r"faults\[0\]\.host: must be a host in 0\.\.2"):
        check(tmp_path, [{"kind": "host_partition", "at": 1, "duration": 1, "host": 3}])
    with pytest.raises(ConfigError, match="host 0 is the swarm manager"):
        check(tmp_path, [{"kind": "host_crash", "at": 1, "duration": 1, "host": 0}])


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


def test_a_partition_of_hosts_has_each_host_drop_the_other_groups_hosts_until_healed(
    tmp_path: Path,
) -> None:
    outer = FakeOuter()
    hosts = host_faults(tmp_path, outer=outer)
    hosts.partition(((0, 3, 1, 4), (2, 5)))
    scripts = outer.scripts
    assert sorted(scripts) == ["clocklab-host0", "clocklab-host1", "clocklab-host2"]
    host2 = scripts["clocklab-host2"][0]
    assert "-s 10.9.0.10 -j DROP" in host2 and "-d 10.9.0.11 -j DROP" in host2
    assert "10.9.0.12" not in host2  # not its own address
    host0 = scripts["clocklab-host0"][0]
    assert "-s 10.9.0.12 -j DROP" in host0 and "10.9.0.11" not in host0  # host1 is on its side
    hosts.heal()
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

    def on_cluster(plan: TrialPlan, run_dir: RunDir) -> SwarmBackend:
        stack = stack_on(3, tmp_path, plan)
        return SwarmBackend(stack, (HostFaults(stack, Layout(hosts=3), outer=None),))

    monkeypatch.setattr(commands, "backend_factory", lambda *_: on_cluster)
    argv = ["up", "--backend", "swarm", "--experiment", str(experiment)]
    assert cli.main([*argv, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "faults[0].host: must be a host in 0..2 (the swarm has 3 nodes), got 5" in err
    assert {path: path.read_text() for path in files} == files
    assert sorted(p.name for p in previous.path.rglob("*")) == sorted(
        ["logs", "manifest.json", "orchestrator.log", "vm0.jsonl"]
    )


@pytest.fixture
def swarm_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Event]:
    """A swarm manager reached by context `prod`, with nodes node-a and node-b, and no node
    contexts; what the factory reports is collected."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    manager = engine_of(["node-a", "node-b"])
    monkeypatch.setattr(backend_choice, "connect_from_env", lambda _: manager)
    monkeypatch.setattr(StackCli, "version", lambda _: "27.0")
    monkeypatch.setattr(backend_choice, "ensure_image", lambda *_, **__: "sha256:abc")
    return []


def test_a_schedule_that_kills_on_a_swarm_missing_node_contexts_is_refused_naming_them(
    swarm_here: list[Event],
) -> None:
    with pytest.raises(BackendUnavailable) as refused:
        backend_choice.backend_factory("swarm", "prod", swarm_here.append, {"kill", "loss"})
    message = str(refused.value)
    assert message.startswith("the swarm backend cannot kill: no Docker context ")
    assert "prod-node-a, prod-node-b" in message
    assert "`docker context create prod-node-a --docker host=ssh://USER@node-a`" in message
    assert refused.value.exit_code == 2


def test_a_real_host_crash_on_a_swarm_missing_node_contexts_is_refused_before_start(
    swarm_here: list[Event],
) -> None:
    with pytest.raises(BackendUnavailable) as refused:
        backend_choice.backend_factory("swarm", "prod", swarm_here.append, {"host_crash"})
    assert str(refused.value).startswith("the swarm backend cannot host_crash: no Docker context")
    assert "prod-node-a, prod-node-b" in str(refused.value)


def test_a_schedule_without_vm_faults_runs_on_that_swarm_after_one_warning(
    swarm_here: list[Event], tmp_path: Path
) -> None:
    make = backend_choice.backend_factory("swarm", "prod", swarm_here.append, {"loss"})
    (notice,) = [e for e in swarm_here if isinstance(e, Notice) and e.level.name == "WARNING"]
    assert notice.text.startswith("swarm: kill, pause and host_crash are unavailable")
    assert "takes the log lines it had yet to send: no Docker context" in notice.text
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    backend = make(plan, RunDir(tmp_path / "x" / "trial-1"))
    assert offered_faults(backend) == []


def test_where_every_node_has_its_context_the_swarm_kills_pauses_crashes_and_keeps_logs(
    swarm_here: list[Event], tmp_path: Path
) -> None:
    for name in ("prod-node-a", "prod-node-b"):
        meta = tmp_path / "docker-config" / "contexts" / "meta"
        meta /= hashlib.sha256(name.encode()).hexdigest()
        meta.mkdir(parents=True)
        endpoints = {"docker": {"Host": f"ssh://{name}"}}
        (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": endpoints}))
    make = backend_choice.backend_factory("swarm", "prod", swarm_here.append, {"kill"})
    assert not [e for e in swarm_here if isinstance(e, Notice) and e.level.name == "WARNING"]
    backend = make(plan_trial(Experiment(name="x", vms=2), 1), RunDir(tmp_path / "run"))
    assert offered_faults(backend) == ["kill", "pause", "host_crash"]
    assert isinstance(backend, SwarmBackend) and backend.logs is not None
    assert backend.stack.log_volume


def test_a_manager_reached_without_a_context_cannot_name_its_nodes_and_says_so(
    swarm_here: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    unnamed = engine_of(["node-a"], context=None)
    monkeypatch.setattr(backend_choice, "connect_from_env", lambda _: unnamed)
    with pytest.raises(BackendUnavailable, match=r"cannot pause: .* reach it with --context NAME"):
        backend_choice.backend_factory("swarm", None, swarm_here.append, {"pause"})
