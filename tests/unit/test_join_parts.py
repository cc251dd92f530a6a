"""`clocklab cluster join`: machines named and checked, the swarm planned, its record, and
`down` undoing only what join made (engines are fakes: no Docker, no ssh)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

from orchestrator.cluster.cli import _hosts_file
from orchestrator.cluster.contexts import JOIN_MARK, MARK, Context
from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.join import Join, _contexts, _refuse_twins
from orchestrator.cluster.machines import (
    Machine,
    Target,
    advertise_address,
    check,
    parse_target,
)
from orchestrator.cluster.record import JoinedNode, JoinRecord, Records
from orchestrator.engine import Endpoint


def machine(
    hostname: str,
    state: str = "inactive",
    manager: bool = False,
    node_id: str = "",
    arch: str = "amd64",
    api: str = "1.41",
    given: str = "",
    members: tuple[str, ...] = (),
) -> Machine:
    client = MagicMock()
    client.nodes.list.return_value = [SimpleNamespace(id=m) for m in members]
    swarm = {"LocalNodeState": state, "ControlAvailable": manager, "NodeID": node_id}
    given = given or f"ssh://root@{hostname}"
    target = Target(given, Endpoint(given, chosen_by=given))
    return Machine(target, hostname, arch, "20.10.24", api, swarm, client)


class FakeContexts:
    def __init__(self, existing: dict[str, Context] | None = None) -> None:
        self.made: dict[str, Context] = dict(existing or {})
        self.removed: list[str] = []

    def existing(self) -> dict[str, Context]:
        return dict(self.made)

    def remove_names(self, names: list[str]) -> None:
        self.removed += names
        for name in names:
            self.made.pop(name, None)


def join_for(tmp_path: Path, contexts: FakeContexts | None = None) -> Join:
    return Join(
        "lab",
        source=MagicMock(),
        say=lambda line: None,
        contexts=contexts or FakeContexts(),  # type: ignore[arg-type]
        records=Records(tmp_path / "records"),
        environ={"DOCKER_CONFIG": str(tmp_path)},
    )


# --- naming the machines ------------------------------------------------------


def test_an_ssh_address_is_taken_as_the_endpoint_it_names() -> None:
    target = parse_target("ssh://root@node2:2222", {})
    assert target.endpoint.host == "ssh://root@node2:2222" and target.endpoint.is_ssh
    assert target.context is None


def test_a_context_name_is_resolved_to_its_endpoint(tmp_path: Path) -> None:
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"node3").hexdigest()
    meta.mkdir(parents=True)
    endpoints = {"docker": {"Host": "tcp://node3:2376", "SkipTLSVerify": False}}
    (meta / "meta.json").write_text(json.dumps({"Name": "node3", "Endpoints": endpoints}))
    target = parse_target("node3", {"DOCKER_CONFIG": str(tmp_path)})
    assert target.endpoint.host == "tcp://node3:2376" and target.context == "node3"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("tcp://node:2376", "make a context first"),
        ("ssh://root@node:twenty", "the port must be a number"),
        ("ssh://root@node/var/run", "with nothing after it"),
        ("nowhere", "neither ssh://USER@HOST[:PORT] nor a Docker context"),
    ],
)
def test_a_machine_named_wrongly_is_refused_saying_how_to_name_it(
    given: str, said: str, tmp_path: Path
) -> None:
    with pytest.raises(ClusterError, match=re.escape(said)):
        parse_target(given, {"DOCKER_CONFIG": str(tmp_path)})


def test_a_hosts_file_names_one_machine_a_line_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "machines"
    path.write_text("# the lab\nssh://root@a\n\n  ssh://root@b:2222   # the second\nnode3\n")
    assert _hosts_file(path) == ["ssh://root@a", "ssh://root@b:2222", "node3"]
    with pytest.raises(ClusterError, match="--hosts-file"):
        _hosts_file(tmp_path / "missing")


def test_the_advertised_address_is_the_one_the_machine_is_reached_by() -> None:
    assert advertise_address(Endpoint("ssh://root@127.0.0.1:2222")) == "127.0.0.1"
    assert advertise_address(Endpoint("tcp://127.0.0.1:2376")) == "127.0.0.1"
    assert advertise_address(Endpoint("unix:///var/run/docker.sock")) is None


# --- checking them ------------------------------------------------------------


def test_a_machine_of_another_architecture_is_refused_by_name() -> None:
    with pytest.raises(
        ClusterError, match=r"pi4 \(ssh://root@pi4\) is arm64 and the VM image is amd64"
    ):
        check(machine("pi4", arch="arm64"), "amd64")


def test_an_engine_older_than_docker_20_10_is_refused_by_name() -> None:
    said = r"old \(ssh://root@old\) runs Docker 20.10.24 \(API 1.40\)"
    with pytest.raises(ClusterError, match=said):
        check(machine("old", api="1.40"), "amd64")


def test_a_machine_still_joining_a_swarm_is_refused() -> None:
    with pytest.raises(ClusterError, match="pending in a swarm"):
        check(machine("n", state="pending"), "amd64")


def test_two_machines_of_one_hostname_are_refused() -> None:
    twins = [machine("n", given="ssh://root@a"), machine("n", given="ssh://root@b")]
    with pytest.raises(ClusterError, match="ssh://root@a and ssh://root@b are both n"):
        _refuse_twins(twins)


# --- planning the swarm ---------------------------------------------------------


def test_without_a_swarm_the_first_machine_manages_one_join_makes(tmp_path: Path) -> None:
    record = join_for(tmp_path)._plan([machine("a"), machine("b"), machine("c")], None)
    assert record.swarm_made and record.manager.hostname == "a"
    assert [n.joined_swarm for n in record.nodes] == [False, True, True]
    assert [n.context for n in record.nodes] == ["lab-a", "lab-b", "lab-c"]


def test_a_swarm_found_is_used_and_only_the_machines_outside_it_are_added(tmp_path: Path) -> None:
    members = ("id-a", "id-b")
    found = [
        machine("a", "active", node_id="id-a"),
        machine("b", "active", manager=True, node_id="id-b", members=members),
        machine("c"),
    ]
    record = join_for(tmp_path)._plan(found, None)
    assert not record.swarm_made and record.manager.hostname == "b"
    assert {n.hostname: n.joined_swarm for n in record.nodes} == {"a": False, "b": False, "c": True}


def test_a_join_run_again_keeps_what_the_first_one_made(tmp_path: Path) -> None:
    first = join_for(tmp_path)._plan([machine("a"), machine("b")], None)
    now = [
        machine("a", "active", manager=True, node_id="1", members=("1", "2")),
        machine("b", "active", node_id="2"),
    ]
    again = join_for(tmp_path)._plan(now, first)
    assert again == first  # the swarm is still join's to dissolve


def test_workers_whose_manager_is_not_named_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="a, b are in a swarm whose manager is not among"):
        join_for(tmp_path)._plan([machine("a", "active"), machine("b", "active")], None)


def test_machines_of_another_swarm_are_refused(tmp_path: Path) -> None:
    found = [
        machine("a", "active", manager=True, node_id="1", members=("1",)),
        machine("b", "active", node_id="other"),
    ]
    with pytest.raises(ClusterError, match="b are in another swarm than a's"):
        join_for(tmp_path)._plan(found, None)


def test_a_simulated_cluster_of_the_same_name_is_not_taken_over(tmp_path: Path) -> None:
    simulated = FakeContexts({"lab": Context("lab", "unix:///x", f"{MARK} lab: manager")})
    with pytest.raises(ClusterError, match="the simulated cluster lab has the contexts lab"):
        join_for(tmp_path, simulated)._refuse_conflicts([machine("a")], None)


# --- contexts and the record ----------------------------------------------------


def test_contexts_point_where_each_machine_was_reached_copying_a_named_context() -> None:
    tls = Machine(
        Target("node-b", Endpoint("tcp://b:2376", context="node-b")),
        "b", "amd64", "20.10", "1.41", {}, MagicMock(),
    )  # fmt: skip
    nodes = (
        JoinedNode("a", "ssh://root@a", "lab-a", manager=True),
        JoinedNode("b", "node-b", "lab-b", joined_swarm=True),
    )
    wanted = _contexts(JoinRecord("lab", True, nodes), [machine("a"), tls])
    assert [(c.name, c.docker_host, c.source) for c in wanted] == [
        ("lab", "ssh://root@a", ""),
        ("lab-a", "ssh://root@a", ""),
        ("lab-b", "tcp://b:2376", "node-b"),  # `--docker from=node-b`: its TLS material too
    ]
    assert all(c.description.startswith(f"{JOIN_MARK} lab: ") for c in wanted)


def test_a_record_is_read_back_as_written_and_a_broken_one_is_named(tmp_path: Path) -> None:
    records = Records(tmp_path / "clocklab")
    record = JoinRecord("lab", True, (JoinedNode("a", "ssh://root@a", "lab-a", manager=True),))
    records.save(record)
    assert records.load("lab") == record and records.load("other") is None
    records.path("bad").write_text("{")
    with pytest.raises(ClusterError, match=r"bad\.json is not a record of a joined cluster"):
        records.load("bad")
    records.remove("lab")
    records.remove("bad")
    assert not records.folder.exists()


# --- down -------------------------------------------------------------------------


def engine(state: str, node_id: str) -> Any:
    client = MagicMock()
    client.info.return_value = {
        "Name": node_id,
        "Swarm": {"LocalNodeState": state, "NodeID": node_id},
    }
    return client


def test_down_of_a_swarm_join_found_removes_only_the_nodes_it_added(tmp_path: Path) -> None:
    contexts = FakeContexts(
        {
            name: Context(name, "ssh://x", f"{JOIN_MARK} lab: x")
            for name in ("lab", "lab-a", "lab-b")
        }
        | {"mine": Context("mine", "ssh://y", "the user's")}
    )
    join = join_for(tmp_path, contexts)
    nodes = (
        JoinedNode("a", "ssh://root@a", "lab-a", manager=True),
        JoinedNode("b", "ssh://root@b", "lab-b", joined_swarm=True),
    )
    join.records.save(JoinRecord("lab", False, nodes))
    clients = {"a": engine("active", "id-a"), "b": engine("active", "id-b")}
    join._reach = lambda node, done: clients[node.hostname]  # type: ignore[method-assign]
    done = join.down()
    clients["b"].swarm.leave.assert_called_once_with(force=False)
    clients["a"].swarm.leave.assert_not_called()  # the swarm it found stays
    clients["a"].nodes.get.assert_called_once_with("id-b")  # and forgets the node join added
    assert done == ["b left the swarm", "context lab", "context lab-a", "context lab-b"]
    assert set(contexts.existing()) == {"mine"}
    assert join.records.load("lab") is None


def test_down_of_a_swarm_join_made_dissolves_it(tmp_path: Path) -> None:
    join = join_for(tmp_path)
    nodes = (
        JoinedNode("a", "ssh://root@a", "lab-a", manager=True),
        JoinedNode("b", "ssh://root@b", "lab-b", joined_swarm=True),
    )
    join.records.save(JoinRecord("lab", True, nodes))
    clients = {"a": engine("active", "id-a"), "b": engine("active", "id-b")}
    join._reach = lambda node, done: clients[node.hostname]  # type: ignore[method-assign]
    assert join.down() == ["b left the swarm", "swarm on a dissolved"]
    clients["a"].swarm.leave.assert_called_once_with(force=True)


def test_down_without_a_record_does_nothing(tmp_path: Path) -> None:
    assert join_for(tmp_path).down() == []


def test_a_join_cut_short_undoes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.cluster.join as join_module

    found = {"a": machine("a"), "b": machine("b")}
    monkeypatch.setattr(join_module, "probe", lambda target: found[target.given[-1]])
    monkeypatch.setattr(join_module, "ensure_image", lambda client, progress: "sha256:vm")
    monkeypatch.setattr(join_module, "image_name", lambda client, image_id: "clocklab-vm:src-x")
    monkeypatch.setattr(join_module, "advertise_address", lambda endpoint: "10.0.0.1")
    monkeypatch.setattr(join_module, "form_swarm", lambda *args: ["swarm made on a"])
    monkeypatch.setattr(join_module, "wait_until_ready", lambda *args, **kwargs: None)

    def ship_fails(*args: Any) -> list[str]:
        raise ClusterError("b cannot load the VM image: no space left on device")

    monkeypatch.setattr(join_module, "ship_image", ship_fails)
    contexts = MagicMock()
    contexts.existing.return_value = {}
    contexts.ensure.return_value = ["lab", "lab-a", "lab-b"]
    join = join_for(tmp_path)
    join.contexts = contexts
    join.source.images.get.return_value.attrs = {"Architecture": "amd64"}
    clients = {"a": engine("active", "id-a"), "b": engine("active", "id-b")}
    join._reach = lambda node, done: clients[node.hostname]  # type: ignore[method-assign]
    with pytest.raises(ClusterError, match="no space left"):
        join.join(["ssh://root@a", "ssh://root@b"])
    clients["b"].swarm.leave.assert_called_once_with(force=False)
    clients["a"].swarm.leave.assert_called_once_with(force=True)  # the swarm it made goes
    assert join.records.load("lab") is None
