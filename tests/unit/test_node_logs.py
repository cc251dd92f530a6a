"""Each VM's log on its node's volume, without Docker: the stack file, the merge into `logs/`,
the collection through a node's engine, and host_crash on real hosts."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator import neighbours
from orchestrator.backends.compose.render import MTU_OPTION, render_stack
from orchestrator.backends.swarm.node_engines import NodeEngines
from orchestrator.backends.swarm.node_faults import NodeCrashes
from orchestrator.backends.swarm.node_logs import NodeLogs, volume_name
from orchestrator.backends.swarm.render import swarm_document
from orchestrator.backends.swarm.service_logs import LogWriter, ServiceLogStream
from orchestrator.backends.swarm.stack import Stack, Swarm
from orchestrator.engine import Endpoint, Engine
from orchestrator.errors import ConfigError
from orchestrator.events import Event, Notice
from orchestrator.experiment import Experiment
from orchestrator.faults import parse_faults
from orchestrator.plan import plan_trial
from vm_node.rundir import RunDir

RUN = "r1"
LABELS = {"clocklab.run": RUN, "clocklab.session": "test"}


def line(seq: int, vm: int = 1, incarnation: int = 0, event: str = "internal") -> bytes:
    record = {"event": event, "seq": seq, "run": RUN, "vm": vm, "incarnation": incarnation}
    return orjson.dumps(record)


def lines(seqs: range, vm: int = 1, incarnation: int = 0) -> bytes:
    return b"".join(line(s, vm, incarnation) + b"\n" for s in seqs)


# --- the stack file ---------------------------------------------------------


def stack_file(log_volume: dict[str, str] | None, mtu: int | None = None) -> dict[str, Any]:
    plan = plan_trial(Experiment(name="original", vms=2, mtu=mtu), 1)
    return swarm_document(render_stack(plan, "img", LABELS), plan, "sha256:ab", (), log_volume)


def test_with_a_log_volume_each_vm_writes_its_log_there_and_to_stdout() -> None:
    doc = stack_file(LABELS)
    assert doc["volumes"] == {"logs": {"labels": LABELS}}
    for service in doc["services"].values():
        assert {"type": "volume", "source": "logs", "target": "/logs"} in service["volumes"]
        assert service["environment"]["CLOCKLAB_LOG_DIR"] == "/logs"
        assert service["environment"]["CLOCKLAB_LOG_STREAM"] == "file+stdout"


def test_without_a_log_volume_the_log_goes_to_stdout_alone() -> None:
    doc = stack_file(None)
    assert "volumes" not in doc
    for service in doc["services"].values():
        assert not [v for v in service["volumes"] if v["type"] == "volume"]
        assert service["environment"]["CLOCKLAB_LOG_STREAM"] == "stdout"


def test_the_mtu_goes_on_the_lab_network_under_compose_and_swarm() -> None:
    plan = plan_trial(Experiment(name="original", vms=2, mtu=1400), 1)
    (compose,) = render_stack(plan, "img", LABELS)["networks"].values()
    assert compose["driver_opts"] == {MTU_OPTION: "1400"}
    (swarm,) = stack_file(None, mtu=1400)["networks"].values()
    assert swarm["driver_opts"] == {MTU_OPTION: "1400"}
    (default,) = stack_file(None)["networks"].values()
    assert "driver_opts" not in default


def test_an_mtu_out_of_range_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"mtu.*between 68 and 65535 bytes, got 20"):
        Experiment(name="x").with_overrides(mtu=20)
    data = {"name": "x", "mtu": 1450}
    assert Experiment.from_mapping(data, "x.yaml").to_dict()["mtu"] == 1450
    assert "mtu" not in Experiment(name="x").to_dict()  # the engine's: nothing recorded


# --- the merge --------------------------------------------------------------


def test_a_longer_copy_from_the_node_replaces_the_streamed_file_and_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    writer = LogWriter(logs, 1, RUN)
    for seq in range(3):  # the stream carried 0..2 before the node went down
        writer.take(line(seq))
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(lines(range(6)) + b'{"event": "int')  # the node kept 0..5
    adopted = writer.adopt(0, copy)
    assert (adopted.file, adopted.lines, adopted.streamed, adopted.kept) == (
        "vm1.jsonl",
        6,
        3,
        True,
    )
    for seq in (4, 5, 6):  # the stream catches up: only 6 is new
        writer.take(line(seq))
    writer.close()
    assert (logs / "vm1.jsonl").read_bytes() == lines(range(7))
    assert writer.repeated == 2 and not copy.exists()


def test_a_copy_no_longer_than_the_streamed_file_is_dropped(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 1, RUN)
    for seq in range(4):
        writer.take(line(seq))
    copy = tmp_path / "copy"
    copy.write_bytes(lines(range(4)))
    assert not writer.adopt(0, copy).kept
    writer.close()
    assert (tmp_path / "vm1.jsonl").read_bytes() == lines(range(4)) and not copy.exists()


# --- collection through a node's engine -------------------------------------


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class FakeNodeEngine:
    """A node's engine as node_logs uses it: its volumes, and containers that read them."""

    def __init__(self, volumes: dict[str, dict[str, bytes]]) -> None:
        self.volumes_held = volumes
        self.made: list[dict[str, Any]] = []
        self.removed: list[str] = []
        self.killed: list[str] = []
        self.running: list[dict[str, Any]] = []
        engine = self

        class Volume:
            def __init__(self, name: str) -> None:
                self.name = name

            def remove(self, force: bool = False) -> None:
                del engine.volumes_held[self.name]

        class Volumes:
            def get(self, name: str) -> Volume:
                from docker.errors import NotFound

                if name not in engine.volumes_held:
                    raise NotFound(f"no volume {name}")
                return Volume(name)

        self.volumes = Volumes()
        self.api = self

    # the low-level API
    def create_host_config(self, binds: dict[str, Any]) -> dict[str, Any]:
        return {"binds": binds}

    def create_container(self, image: str, labels: dict[str, str], host_config: Any) -> Any:
        self.made.append({"image": image, "labels": labels, "host_config": host_config})
        return {"Id": f"reader{len(self.made)}"}

    def get_archive(self, container: str, path: str) -> tuple[list[bytes], dict[str, Any]]:
        (volume,) = self.made[-1]["host_config"]["binds"]
        data = tar_of(self.volumes_held[volume])
        return [data[:100], data[100:]], {}

    def remove_container(self, container: str, force: bool = False) -> None:
        self.removed.append(container)

    def containers(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """The running containers with every label of `filters` (KEY or KEY=VALUE)."""

        def labelled(container: dict[str, Any], label: str) -> bool:
            key, has_value, value = label.partition("=")
            held = container["Labels"]
            return key in held and (not has_value or held[key] == value)

        return [c for c in self.running if all(labelled(c, x) for x in filters["label"])]

    def kill(self, container: str) -> None:
        self.killed.append(container)


class FakeEngines(NodeEngines):
    def __init__(self, nodes: dict[str, FakeNodeEngine]) -> None:
        super().__init__("prod", "s1", {})
        self.nodes = nodes

    def client(self, hostname: str) -> Any:
        return self.nodes[hostname]


class FakeSwarmNode:
    def __init__(self, manager: FakeManager, ident: str, hostname: str) -> None:
        self.manager = manager
        self.attrs = {
            "ID": ident,
            "Description": {"Hostname": hostname},
            "Status": {"State": "ready"},
            "Spec": {"Availability": "active", "Role": "worker"},
        }

    def update(self, spec: dict[str, Any]) -> None:
        self.manager.availability.append((self.attrs["Description"]["Hostname"], spec))


class FakeManager:
    def __init__(self, hostnames: list[str]) -> None:
        self.availability: list[tuple[str, dict[str, Any]]] = []
        found = [FakeSwarmNode(self, f"id-{h}", h) for h in hostnames]
        by_id = {n.attrs["ID"]: n for n in found}
        self.nodes = type("Nodes", (), {"list": lambda _: found, "get": lambda _, i: by_id[i]})()

    def info(self) -> dict[str, Any]:
        return {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}


class FakeCli:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start_again(self, service: str, env: dict[str, str]) -> None:
        self.started.append(service)


def stack_with_streams(tmp_path: Path, said: list[Event] | None = None) -> Stack:
    """A deployed stack of 2 VMs on host0 and host1, vm1 on host1, as far as its logs go."""
    manager = FakeManager(["host0", "host1"])
    engine = Engine(manager, Endpoint("ssh://manager", "prod"), "s1")
    report = said.append if said is not None else (lambda _: None)
    swarm = Swarm(engine, "sha256:vm", "clocklab-vm:latest", FakeCli(), "27", report)  # type: ignore[arg-type]
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    stack = Stack(plan, RunDir(tmp_path / "x" / "trial-1"), swarm, log_volume=True)
    stack.run_dir.empty()
    for vm in range(2):
        writer = LogWriter(stack.run_dir.logs, vm, plan.run)
        stack._streams[vm] = ServiceLogStream(swarm.cli, f"svc{vm}", writer, tmp_path / "err")
    stack._services = {"svc0": 0, "svc1": 1}
    stack._tasks = {0: {"NodeID": "id-host0"}, 1: {"NodeID": "id-host1"}}
    return stack


def test_a_node_s_volume_is_read_and_each_longer_file_kept_and_said(tmp_path: Path) -> None:
    stack = stack_with_streams(tmp_path)
    run = stack.plan.run
    writer = stack.log_writer(1)
    assert writer is not None
    for seq in range(2):
        writer.take(orjson.dumps(orjson.loads(line(seq)) | {"run": run}))
    volume = volume_name(stack.name)
    kept = b"".join(orjson.dumps(orjson.loads(line(s)) | {"run": run}) + b"\n" for s in range(5))
    host1 = FakeNodeEngine({volume: {"vm1.jsonl": kept, "notes.txt": b"not a log"}})
    logs = NodeLogs(stack, FakeEngines({"host0": FakeNodeEngine({}), "host1": host1}))

    (adopted,) = logs.collect("host1")

    assert adopted.kept and stack.run_dir.log_path(1).read_bytes() == kept
    (reader,) = host1.made
    assert reader["image"] == "sha256:vm" and reader["labels"]["clocklab.run"] == run
    assert reader["host_config"]["binds"][volume]["mode"] == "ro"
    assert host1.removed == ["reader1"]  # the reader went again
    assert not (stack.run_dir.path / ".node-logs").exists()
    said = [orjson.loads(x) for x in stack.run_dir.orchestrator_log.read_bytes().splitlines()]
    assert said == [
        {
            "event": "log_from_volume",
            "node": "host1",
            "file": "vm1.jsonl",
            "lines": 5,
            "streamed": 2,
        }
    ]
    facts = logs.describe()
    assert facts["log_volume"] == volume
    assert facts["logs_on_nodes"] == {"vm1.jsonl": {"node": "host1", "lines": 5, "streamed": 2}}
    assert facts["logs_from_volume"] == ["vm1.jsonl"]


def test_a_node_without_the_volume_gives_nothing_and_makes_no_volume(tmp_path: Path) -> None:
    stack = stack_with_streams(tmp_path)
    host0 = FakeNodeEngine({})
    logs = NodeLogs(stack, FakeEngines({"host0": host0, "host1": FakeNodeEngine({})}))
    assert logs.collect("host0") == [] and host0.made == []


def test_teardown_collects_every_node_then_removes_each_volume(tmp_path: Path) -> None:
    from orchestrator.backends.swarm import SwarmBackend

    stack = stack_with_streams(tmp_path)
    volume = volume_name(stack.name)
    run = stack.plan.run
    vm0 = orjson.dumps(orjson.loads(line(0, vm=0)) | {"run": run}) + b"\n"
    nodes = {"host0": FakeNodeEngine({volume: {"vm0.jsonl": vm0}}), "host1": FakeNodeEngine({})}
    logs = NodeLogs(stack, FakeEngines(nodes))
    backend = SwarmBackend(stack, logs=logs)
    stack.remove = lambda: None  # type: ignore[method-assign]  # nothing deployed here
    stack._owner = True

    backend.teardown()

    assert stack.run_dir.log_path(0).read_bytes() == vm0
    assert all(not node.volumes_held for node in nodes.values())
    assert logs.problems == []


# --- host_crash on real hosts -----------------------------------------------


def test_a_real_host_crash_kills_the_trial_s_vms_there_not_its_clock_reader_and_drains_it(
    tmp_path: Path,
) -> None:
    stack = stack_with_streams(tmp_path)
    host1 = FakeNodeEngine({})
    run = stack.plan.run
    host1.running = [
        {"Id": "c1", "Labels": {"clocklab.run": run, "clocklab.vm": "1"}},
        {"Id": "c2", "Labels": {"clocklab.run": run, "clocklab.vm": "4"}},
        {"Id": "clock-reader", "Labels": {"clocklab.run": run}},
        {"Id": "another-trial-s-vm", "Labels": {"clocklab.run": "other", "clocklab.vm": "1"}},
    ]
    crashes = NodeCrashes(stack, FakeEngines({"host0": FakeNodeEngine({}), "host1": host1}))
    manager = stack.client

    assert crashes.crash_host(1) == (1,)

    assert sorted(host1.killed) == ["c1", "c2"]
    ((node, spec),) = manager.availability
    assert node == "host1" and spec["Availability"] == "drain" and spec["Role"] == "worker"


def test_a_real_host_back_is_active_its_logs_collected_then_its_vms_started_again(
    tmp_path: Path,
) -> None:
    stack = stack_with_streams(tmp_path)
    run = stack.plan.run
    ready = {"run": run, "event": "ready", "start_at": 1.0, "lamport": 0, "vc": {}}
    stream = orjson.dumps(orjson.loads(line(0)) | ready)
    writer = stack.log_writer(1)
    assert writer is not None
    writer.take(stream)
    kept = (
        stream
        + b"\n"
        + orjson.dumps(orjson.loads(line(1)) | {"run": run, "lamport": 9, "vc": {"1": 9}})
        + b"\n"
    )
    host1 = FakeNodeEngine({volume_name(stack.name): {"vm1.jsonl": kept}})
    engines = FakeEngines({"host0": FakeNodeEngine({}), "host1": host1})
    crashes = NodeCrashes(stack, engines, NodeLogs(stack, engines))

    crashes.restart_host(1)

    ((node, spec),) = stack.client.availability
    assert node == "host1" and spec["Availability"] == "active"
    assert stack.run_dir.log_path(1).read_bytes() == kept  # collected before the restart
    assert stack.swarm.cli.started == ["svc1"]  # type: ignore[attr-defined]


def test_a_real_host_crash_must_name_one_of_the_swarm_s_nodes(tmp_path: Path) -> None:
    stack = stack_with_streams(tmp_path)
    crashes = NodeCrashes(stack, FakeEngines({}))
    (fine,) = parse_faults([{"kind": "host_crash", "at": 1, "duration": 1, "host": 1}], 2, None)
    crashes.check_fault("faults[0]", fine, 2)
    (beyond,) = parse_faults([{"kind": "host_crash", "at": 1, "duration": 1, "host": 2}], 2, None)
    with pytest.raises(ConfigError, match=r"faults\[0\]\.host: must be a host in 0\.\.1"):
        crashes.check_fault("faults[0]", beyond, 2)


# --- the neighbour table ----------------------------------------------------


def test_a_node_s_share_of_the_vms_is_what_its_kernel_must_hold(tmp_path: Path) -> None:
    assert neighbours.entries_needed(50) == 2450
    assert neighbours.entries_needed(50, nodes=3) == 17 * 49
    (tmp_path / "gc_thresh3").write_text("1024\n")
    assert neighbours.shortfall(50, tmp_path, nodes=3) is None  # 833 entries
    problem = neighbours.shortfall(50, tmp_path, nodes=2)  # 1225
    assert problem is not None and "over 2 nodes" in problem and "1225" in problem


@pytest.mark.parametrize(("shared", "nodes"), [("all", 1), ("node", 2), ("none", None)])
def test_a_swarm_trial_warns_of_the_neighbour_table_this_machine_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: str, nodes: int | None
) -> None:
    asked: list[int] = []

    def shortfall(vms: int, nodes: int = 1) -> str:
        asked.append(nodes)
        return "too few entries"

    monkeypatch.setattr(neighbours, "shortfall", shortfall)
    said: list[Event] = []
    stack = stack_with_streams(tmp_path, said)
    stack.swarm = dataclasses.replace(stack.swarm, neighbours=shared)  # type: ignore[arg-type]
    stack._warn_of_neighbours()
    assert asked == ([] if nodes is None else [nodes])
    assert [e.text for e in said if isinstance(e, Notice)] == (
        [] if nodes is None else ["too few entries"]
    )


def test_a_node_whose_volume_cannot_be_read_is_named_and_its_vms_still_start_again(
    tmp_path: Path,
) -> None:
    from docker.errors import DockerException

    class Unreachable(FakeEngines):
        def client(self, hostname: str) -> Any:
            if hostname == "host1":
                raise DockerException("ssh: connect to host node1: Connection refused")
            return super().client(hostname)

    stack = stack_with_streams(tmp_path)
    ready = {"run": stack.plan.run, "event": "ready", "start_at": 1.0, "lamport": 0, "vc": {}}
    writer = stack.log_writer(1)
    assert writer is not None
    writer.take(orjson.dumps(orjson.loads(line(0)) | ready))
    engines = Unreachable({"host0": FakeNodeEngine({}), "host1": FakeNodeEngine({})})
    logs = NodeLogs(stack, engines)
    crashes = NodeCrashes(stack, engines, logs)

    crashes.restart_host(1)

    assert stack.swarm.cli.started == ["svc1"]  # type: ignore[attr-defined]
    (problem,) = logs.problems
    assert problem.startswith("host1: DockerException: ssh: connect to host node1")
    assert logs.describe()["log_volume_problems"] == [problem]
