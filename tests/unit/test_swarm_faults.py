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
from orchestrator.backends.swarm.node_cuts import NodeCuts
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
    engines = NodeEngines("prod", "s1")
    nodes = NodeFaults(stack, engines)
    cuts = NodeCuts(stack, engines)
    hosts = HostFaults(stack, Layout(hosts=3), outer=None)
    assert offered_faults(SwarmBackend(stack)) == []
    assert offered_faults(SwarmBackend(stack, (nodes,))) == ["kill", "pause"]
    any_swarm = SwarmBackend(stack, (nodes, cuts))
    assert offered_faults(any_swarm) == ["kill", "pause", "partition", "host_partition"]
    on_cluster = SwarmBackend(stack, (nodes, hosts, cuts))
    assert offered_faults(on_cluster) == [
        "kill",
        "pause",
        "partition",
        "host_partition",
        "host_crash",
    ]
    assert isinstance(nodes, Killable) and isinstance(nodes, Pausable)
    assert isinstance(cuts, Partitionable) and isinstance(cuts, HostPartitionable)
    assert isinstance(hosts, HostPartitionable) and isinstance(hosts, HostCrashable)
    assert not isinstance(hosts, Partitionable)  # one way to partition: beside the VMs


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


class FakeStack:
    """A running stack as the cuts see it: where each VM is, and its address."""

    def __init__(
        self,
        located: dict[int, tuple[str, str, str]],
        nodes: list[str],
        schedule: list[dict[str, Any]] | None = None,
    ) -> None:
        self._located = located
        self.nodes = [Node(f"id-{name}", name) for name in nodes]
        faults = parse_faults(schedule, len(located), None)
        self.plan = plan_trial(Experiment(name="x", vms=len(located), faults=faults), 1)
        self.swarm = Swarm(engine_of(nodes), "sha256:vm", "clocklab-vm:latest", FakeCli(), "27")

    def deploy(self) -> None:
        pass

    def located(self) -> dict[int, tuple[str, str, str]]:
        return self._located

    def vms_on(self, hostname: str) -> tuple[int, ...]:
        return tuple(vm for vm, (host, _, _) in sorted(self._located.items()) if host == hostname)


class FakeEngines:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def client(self, hostname: str) -> str:
        self.asked.append(hostname)
        return f"engine of {hostname}"


class RecordingCutter:
    def __init__(self) -> None:
        self.cuts: list[dict[Any, list[str]]] = []
        self.prepared: list[int] = []

    def prepare(self, targets: Any) -> None:
        self.prepared += [target.vm for target in targets]

    def cut(self, drops: dict[Any, list[str]]) -> None:
        self.cuts.append(drops)


def test_cuts_on_a_swarm_go_through_each_vms_node_and_drop_the_peers_addresses() -> None:
    located = {vm: (f"host{vm % 2}", f"c{vm}", f"10.0.1.{10 + vm}") for vm in range(4)}
    stack, engines = FakeStack(located, ["host0", "host1"]), FakeEngines()
    cuts = NodeCuts(stack, engines)  # type: ignore[arg-type]
    cutter = RecordingCutter()
    cuts.cutter = cutter  # type: ignore[assignment]

    cuts.partition(((0, 1, 2), (3,)))
    ((target, peers),) = cutter.cuts[-1].items()
    assert (target.vm, target.container, target.client) == (3, "c3", "engine of host1")
    assert peers == ["10.0.1.10", "10.0.1.11", "10.0.1.12"]

    cuts.cut_off_host(1)  # VMs 1 and 3: each drops every VM on host0
    drops = {t.vm: peers for t, peers in cutter.cuts[-1].items()}
    assert drops == {1: ["10.0.1.10", "10.0.1.12"], 3: ["10.0.1.10", "10.0.1.12"]}


@pytest.mark.parametrize(
    ("schedule", "helpers"),
    [
        ([{"kind": "host_partition", "at": 1, "duration": 1, "host": 2}], []),
        ([{"kind": "kill", "at": 1, "duration": 1, "target": 0}], []),
        ([{"kind": "partition", "at": 1, "duration": 1, "groups": [[0, 1, 3, 4], [2, 5]]}], [2, 5]),
    ],
)
def test_on_a_cluster_helpers_are_made_only_beside_the_vms_a_partition_may_cut(
    schedule: list[dict[str, Any]], helpers: list[int]
) -> None:
    located = {vm: (f"host{vm % 3}", f"c{vm}", f"10.0.1.{10 + vm}") for vm in range(6)}
    stack = FakeStack(located, ["host0", "host1", "host2"], schedule)
    cuts = NodeCuts(stack, FakeEngines())  # type: ignore[arg-type]
    cutter = RecordingCutter()
    cuts.cutter = cutter  # type: ignore[assignment]
    hosts = HostFaults(stack, Layout(hosts=3), outer=None)  # type: ignore[arg-type]

    SwarmBackend(stack, (hosts, cuts)).launch()  # type: ignore[arg-type]

    assert cutter.prepared == helpers  # the host's cut is the cluster's: no helper for it


def test_a_host_partition_on_a_swarm_must_name_one_of_its_nodes() -> None:
    located = {vm: ("host0", f"c{vm}", f"10.0.1.{vm}") for vm in range(2)}
    cuts = NodeCuts(FakeStack(located, ["host0"]), FakeEngines())  # type: ignore[arg-type]
    (fault,) = parse_faults(
        [{"kind": "host_partition", "at": 1, "duration": 1, "host": 1}], 2, None
    )
    with pytest.raises(ConfigError, match=r"faults\[0\]\.host: must be a host in 0\.\.0"):
        cuts.check_fault("faults[0]", fault, 2)


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
    assert notice.text.startswith(
        "swarm: kill, pause, partition, host_partition and host_crash are unavailable"
    )
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
    assert offered_faults(backend) == [
        "kill",
        "pause",
        "partition",
        "host_partition",
        "host_crash",
    ]
    assert isinstance(backend, SwarmBackend) and backend.logs is not None
    assert backend.stack.log_volume


def test_a_manager_reached_without_a_context_cannot_name_its_nodes_and_says_so(
    swarm_here: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    unnamed = engine_of(["node-a"], context=None)
    monkeypatch.setattr(backend_choice, "connect_from_env", lambda _: unnamed)
    with pytest.raises(BackendUnavailable, match=r"cannot pause: .* reach it with --context NAME"):
        backend_choice.backend_factory("swarm", None, swarm_here.append, {"pause"})


def test_each_swarm_node_is_read_through_its_context_with_the_vms_pinned_there(
    tmp_path: Path,
) -> None:
    stack = stack_on(3, tmp_path, plan_trial(Experiment(name="x", vms=7), 1))
    assert SwarmBackend(stack).clock_nodes() == []  # no contexts: the logs alone bound them
    nodes = SwarmBackend(stack, (NodeFaults(stack, NodeEngines("prod", "s1")),)).clock_nodes()
    assert [(n.name, n.vms) for n in nodes] == [
        ("host0", (0, 3, 6)),
        ("host1", (1, 4)),
        ("host2", (2, 5)),
    ]
    python = nodes[1].python
    assert python[:4] == ("docker", "--context", "prod-host1", "run")
    assert python[-1] == "sha256:abc"  # the image by the id every node holds
    assert "--network" in python and f"clocklab.run={stack.plan.run}" in python
    assert nodes[1].env is not None and "DOCKER_HOST" not in nodes[1].env
