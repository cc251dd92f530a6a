"""The swarm backend's parts that need no Docker: the stack file, the log lines, the preflight."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest

from orchestrator.backends.compose.render import render_stack
from orchestrator.backends.swarm.docker_stack import StackCli
from orchestrator.backends.swarm.render import swarm_document
from orchestrator.backends.swarm.service_logs import LogWriter, ServiceLogStream
from orchestrator.backends.swarm.stack import QUIET, Stack, Swarm
from orchestrator.backends.swarm.tasks import NEVER_RAN, exit_code, usable_nodes
from orchestrator.engine import Endpoint, Engine
from orchestrator.errors import BackendUnavailable
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from vm_node.rundir import RunDir

IMAGE_ID = "sha256:" + "ab" * 32
RUN = "r1"
LABELS = {"clocklab.run": RUN, "clocklab.session": "test"}


def document(nodes: tuple[str, ...] = ()) -> dict[str, Any]:
    plan = plan_trial(Experiment(name="original", vms=3), 1)
    return swarm_document(render_stack(plan, "clocklab-vm:latest", LABELS), plan, IMAGE_ID, nodes)


def line(seq: int, event: str = "internal", vm: int = 0, run: str = RUN, **more: Any) -> bytes:
    record = {"event": event, "seq": seq, "run": run, "vm": vm, "incarnation": 0} | more
    return orjson.dumps(record)


# --- the stack file ---------------------------------------------------------


def test_the_stack_file_has_what_swarm_needs_for_every_vm() -> None:
    doc = document()
    assert doc["version"] == "3.8"
    assert sorted(doc["services"]) == ["vm0", "vm1", "vm2"]
    for name, service in doc["services"].items():
        assert service["image"] == IMAGE_ID
        assert service["hostname"] == name
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
        assert service["deploy"]["restart_policy"] == {"condition": "none"}
        # a VM started again does not wait for the manager to hear of the old task's end
        assert service["deploy"]["update_config"] == {"order": "start-first"}
        assert service["deploy"]["labels"] == service["labels"]
        assert "clocklab.run" in service["deploy"]["labels"]


def test_the_stack_file_keeps_the_security_settings_swarm_has() -> None:
    plan = plan_trial(Experiment(name="original", vms=3), 1)
    compose = render_stack(plan, "clocklab-vm:latest", LABELS)
    swarm = swarm_document(compose, plan, IMAGE_ID)
    assert compose["services"]["vm0"]["read_only"] is True
    for key in ("read_only", "cap_drop", "init", "user"):
        assert swarm["services"]["vm0"][key] == compose["services"]["vm0"][key], key


def test_tmp_is_a_long_form_tmpfs_and_holds_the_logs() -> None:
    service = document()["services"]["vm1"]
    assert service["environment"]["CLOCKLAB_LOG_DIR"] == "/tmp/logs"
    (tmpfs,) = [v for v in service["volumes"] if v["target"] == "/tmp"]
    assert tmpfs["type"] == "tmpfs" and tmpfs["tmpfs"]["size"] >= 16 * 2**20
    assert not any(isinstance(v, dict) and v.get("type") == "bind" for v in service["volumes"])


def test_keys_swarm_drops_or_rejects_are_left_out() -> None:
    for service in document()["services"].values():
        assert not {"restart", "pull_policy", "security_opt", "tmpfs"} & set(service)


def test_vms_are_spread_round_robin_over_several_nodes() -> None:
    doc = document(("n1", "n2"))
    placed = [s["deploy"]["placement"]["constraints"] for s in doc["services"].values()]
    assert placed == [["node.id == n1"], ["node.id == n2"], ["node.id == n1"]]
    assert all("placement" not in s["deploy"] for s in document(("n1",))["services"].values())


def test_the_network_keeps_its_labels_and_no_driver() -> None:
    (network,) = document()["networks"].values()
    assert "clocklab.run" in network["labels"] and "driver" not in network


# --- the log lines ----------------------------------------------------------


def test_each_line_is_written_once_even_when_the_stream_starts_again(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, RUN)
    for seq in (0, 1, 2, 0, 1, 2, 3):
        writer.take(line(seq))
    writer.close()
    seqs = [orjson.loads(x)["seq"] for x in (tmp_path / "vm0.jsonl").read_bytes().splitlines()]
    assert seqs == [0, 1, 2, 3]
    assert (writer.written, writer.repeated, writer.gaps) == (4, 3, 0)


def test_lines_of_other_vms_runs_or_no_json_are_not_written(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 0, RUN)
    for text in (b"Traceback (most recent call last):", line(0, vm=1), line(0, run="old"), b"[]"):
        writer.take(text)
    writer.close()
    assert writer.foreign == 4 and not (tmp_path / "vm0.jsonl").exists()


def test_a_gap_in_seq_is_counted_and_stop_is_noticed(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 2, RUN)
    for seq, event in ((0, "start"), (2, "internal"), (3, "stop")):
        writer.take(line(seq, event, vm=2))
    writer.close()
    assert writer.gaps == 1 and writer.stopped


def test_a_later_incarnation_gets_its_own_file(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 1, RUN)
    writer.take(line(0, vm=1))
    writer.take(line(0, vm=1).replace(b'"incarnation":0', b'"incarnation":1'))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm1.1.jsonl", "vm1.jsonl"]


class ChunkedCli(StackCli):
    """Stands in for `docker service logs`: prints the lines in odd chunks, then ends."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(Endpoint("unix:///nowhere.sock"))
        self.payload = payload
        self.calls = 0

    def follow_logs(self, service: str, stderr: BinaryIO) -> subprocess.Popen[bytes]:
        self.calls += 1
        # Each chunk is written once the reader has taken the one before (FIONREAD: bytes
        # still in the pipe), so that every chunk comes to it in a read of its own.
        script = (
            "import fcntl, struct, sys, termios, time\n"
            f"data = {self.payload!r}\n"
            "def in_pipe():\n"
            "    return struct.unpack('i', fcntl.ioctl(1, termios.FIONREAD, b'0000'))[0]\n"
            "for i in range(0, len(data), 7):\n"
            "    sys.stdout.buffer.write(data[i:i + 7]); sys.stdout.flush()\n"
            "    deadline = time.monotonic() + 10\n"
            "    while in_pipe() and time.monotonic() < deadline:\n"
            "        time.sleep(0.001)\n"
            "sys.stderr.write('a warning\\n')\n"
        )
        return subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )


def test_lines_split_across_chunks_and_replayed_streams_come_out_whole_and_once(
    tmp_path: Path,
) -> None:
    lines = [line(seq, "stop" if seq == 19 else "internal") for seq in range(20)]
    cli = ChunkedCli(b"\n".join(lines) + b"\n" + line(20)[:10])  # ends in half a line
    writer = LogWriter(tmp_path, 0, RUN)
    stream = ServiceLogStream(cli, "svc", writer, tmp_path / "vm0.log")
    stream.start()
    deadline = time.monotonic() + 10
    while writer.repeated < len(lines) and time.monotonic() < deadline:
        time.sleep(0.02)  # the CLI ended: it is followed again, from the start
    stream.close()
    assert (tmp_path / "vm0.jsonl").read_bytes() == b"".join(x + b"\n" for x in lines)
    assert cli.calls >= 2 and writer.repeated >= len(lines)
    assert writer.stopped and writer.gaps == 0
    assert b"a warning" in (tmp_path / "vm0.log").read_bytes()


# --- preflight and exit codes -----------------------------------------------


class FakeNodes:
    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self._nodes = nodes

    def list(self) -> list[Any]:
        return [type("Node", (), {"attrs": n})() for n in self._nodes]


class FakeClient:
    def __init__(self, swarm: dict[str, Any], nodes: list[dict[str, Any]] | None = None) -> None:
        self._swarm = swarm
        self.nodes = FakeNodes(nodes or [])

    def info(self) -> dict[str, Any]:
        return {"Swarm": self._swarm}


def node(
    ident: str, host: str, state: str = "ready", availability: str = "active"
) -> dict[str, Any]:
    return {
        "ID": ident,
        "Description": {"Hostname": host},
        "Status": {"State": state},
        "Spec": {"Availability": availability},
    }


def test_an_engine_outside_a_swarm_is_told_to_init_one() -> None:
    with pytest.raises(BackendUnavailable, match="docker swarm init") as info:
        usable_nodes(FakeClient({"LocalNodeState": "inactive"}))
    assert info.value.exit_code == 2


def test_a_worker_is_told_to_run_clocklab_on_a_manager() -> None:
    client = FakeClient({"LocalNodeState": "active", "ControlAvailable": False})
    with pytest.raises(BackendUnavailable, match="manager"):
        usable_nodes(client)


def test_only_ready_active_nodes_are_used_in_hostname_order() -> None:
    client = FakeClient(
        {"LocalNodeState": "active", "ControlAvailable": True},
        [node("c", "host-c"), node("a", "host-a"), node("d", "host-d", state="down"),
         node("b", "host-b", availability="drain")],
    )  # fmt: skip
    assert [n.hostname for n in usable_nodes(client)] == ["host-a", "host-c"]


def task(state: str, container: str = "c1", code: int = 0) -> dict[str, Any]:
    return {
        "Status": {"State": state, "ContainerStatus": {"ContainerID": container, "ExitCode": code}}
    }


@pytest.mark.parametrize(
    ("given", "code"),
    [
        (None, None),
        (task("pending", container=""), None),
        (task("running"), None),
        (task("complete"), 0),
        (task("failed", code=1), 1),
        (task("shutdown", code=0), 0),
        (task("rejected", container=""), NEVER_RAN),
    ],
)
def test_a_task_state_maps_to_an_exit_code(given: dict[str, Any] | None, code: int | None) -> None:
    assert exit_code(given) == code


class CountingApi:
    """The manager's task list, counting how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0
        self.states = {0: "running", 1: "running"}
        self.codes = {0: 0, 1: 0}

    def tasks(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        self.asked += 1
        return [
            {
                "ID": f"task{vm}",
                "ServiceID": f"svc{vm}",
                "NodeID": "node0",
                "Status": {
                    "State": state,
                    "ContainerStatus": {"ContainerID": "c", "ExitCode": self.codes[vm]},
                },
            }
            for vm, state in self.states.items()
        ]


def test_the_manager_is_asked_for_tasks_only_while_some_vm_may_have_ended(tmp_path: Path) -> None:
    client = FakeClient({"LocalNodeState": "active", "ControlAvailable": True}, [node("n", "h")])
    client.api = api = CountingApi()
    cli = StackCli(Endpoint("unix:///nowhere.sock"))
    swarm = Swarm(Engine(client, Endpoint("unix:///nowhere.sock"), "s1"), IMAGE_ID, "vm", cli, "27")
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    stack = Stack(plan, RunDir(tmp_path / "x" / "trial-1"), swarm)
    stack._services = {"svc0": 0, "svc1": 1}  # as deployed
    writers = [LogWriter(tmp_path, vm, plan.run) for vm in range(2)]
    for vm, writer in enumerate(writers):
        stack._streams[vm] = ServiceLogStream(cli, f"svc{vm}", writer, tmp_path / "err")
        writer.take(line(0, vm=vm, run=plan.run))

    assert stack.exit_codes() == {0: None, 1: None}
    assert api.asked == 1  # no task seen yet
    assert stack.exit_codes() == {0: None, 1: None}
    assert api.asked == 1  # both running, both logging

    api.states[1] = "complete"
    writers[1].take(line(1, "stop", vm=1, run=plan.run))
    assert stack.exit_codes() == {0: None, 1: 0}
    assert api.asked == 2  # vm1 logged `stop`
    assert stack.exit_codes() == {0: None, 1: 0}
    assert api.asked == 2  # vm1 has ended, vm0 logs

    api.states[0], api.codes[0] = "failed", 3
    writers[0].last_line_at = time.monotonic() - QUIET  # no line for QUIET seconds
    assert stack.exit_codes() == {0: 3, 1: 0}
    assert api.asked == 3
