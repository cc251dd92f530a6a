"""The simulated cluster's parts that need no Docker: names, diagnoses, waits, contexts."""

from __future__ import annotations

import json
import re
import stat
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from orchestrator.cluster import host_image
from orchestrator.cluster.contexts import Contexts, wanted
from orchestrator.cluster.diagnosis import diagnose
from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.hosts import (
    cgroup_folders,
    ensure_host,
    free_subnet,
    remove_cgroup_folders,
)
from orchestrator.cluster.layout import LABEL_CLUSTER, Layout
from orchestrator.cluster.lifecycle import refuse_inner_engine
from orchestrator.errors import ConfigError

# What the engines said on this machine, each with one piece missing.
NO_NET_ADMIN = (
    "failed to start daemon: Error initializing network controller: error obtaining controller "
    "instance: failed to create NAT chain DOCKER: iptables failed: iptables -t nat -N DOCKER: "
    "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied "
    "(you must be root)"
)
NO_SYS_ADMIN = (
    "Error processing tar file(exit status 1): Error creating mount namespace before pivot: "
    "operation not permitted"
)
NO_CGROUP_MOUNT = (
    "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
    "container process: unable to apply cgroup configuration: mkdir "
    "/sys/fs/cgroup/cpuset/clocklab-host0: read-only file system: unknown"
)


def test_each_host_is_named_after_its_index_everywhere() -> None:
    host = Layout(hosts=3, sockets=Path("/run/x")).host(2)
    assert (host.hostname, host.container, host.context) == (
        "host2",
        "clocklab-host2",
        "clocklab-cluster-host2",
    )
    assert host.docker_host == "unix:///run/x/host2/docker.sock"
    command = host.dockerd_command("unix:///outer.sock")
    assert "--cgroup-parent=/clocklab-host2" in command
    assert not any(arg.startswith("--storage-driver") for arg in command)  # dockerd's choice
    assert "--label=clocklab.cluster.engine=unix:///outer.sock" in command


def test_a_host_runs_its_engine_with_run_on_a_tmpfs_that_a_restart_empties(
    tmp_path: Path,
) -> None:
    import docker.errors

    layout = Layout(sockets=tmp_path)
    host = layout.host(1)
    client = MagicMock()
    client.containers.get.side_effect = docker.errors.NotFound("no such container")
    client.networks.get.return_value.attrs = {"IPAM": {"Config": [{"Subnet": "172.31.4.0/24"}]}}
    assert ensure_host(client, layout, host, "clocklab-host:bookworm")
    (args, kwargs) = client.containers.run.call_args
    assert args[1] == host.command(layout.engine)  # nothing left to remove first
    assert kwargs["tmpfs"] == {"/run": "exec,mode=755"}
    client.api.create_endpoint_config.assert_called_once_with(ipv4_address="172.31.4.11")


def test_a_host_starts_its_ssh_server_then_execs_its_engine() -> None:
    host = Layout().host(1)
    command = host.command("unix:///outer.sock")
    assert command[:2] == ["sh", "-c"] and "/usr/sbin/sshd" in command[2]
    assert command[2].endswith('exec "$@"')
    assert command[4:] == host.dockerd_command("unix:///outer.sock")


def test_a_bare_host_carries_no_label_of_a_simulated_cluster() -> None:
    host = Layout(bare=True).host(0)
    command = host.command("unix:///outer.sock", bare=True)
    assert command[4] == "dockerd" and "--cgroup-parent=/clocklab-host0" in command
    assert not [arg for arg in command if arg.startswith("--label")]


def test_a_host_made_without_a_capability_hosts_need_now_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    layout = Layout(sockets=tmp_path)
    client = MagicMock()
    existing = client.containers.get.return_value
    existing.labels = {LABEL_CLUSTER: layout.name}
    existing.attrs = {"HostConfig": {"CapAdd": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}}
    with pytest.raises(ClusterError, match=r"clocklab-host1 lacks the capabilities SYS_PTRACE"):
        ensure_host(client, layout, layout.host(1), "clocklab-host:bookworm")
    existing.attrs = {"HostConfig": {"CapAdd": ["CAP_SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]}}
    assert not ensure_host(client, layout, layout.host(1), "clocklab-host:bookworm")


@pytest.mark.parametrize("hosts", [0, 17])
def test_a_host_count_out_of_range_is_a_config_error_naming_the_field(hosts: int) -> None:
    with pytest.raises(ConfigError, match=f"hosts: must be 1..16, got {hosts}"):
        Layout(hosts=hosts)


@pytest.mark.parametrize(
    ("said", "missing"),
    [
        (NO_NET_ADMIN, "CAP_NET_ADMIN"),
        (NO_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (NO_CGROUP_MOUNT, "-v /sys/fs/cgroup:/sys/fs/cgroup:rw"),
        ("Error response from daemon: unable to apply caps: operation not permitted", "refuses"),
    ],
)
def test_an_engine_failure_is_traced_to_the_missing_capability_or_mount(
    said: str, missing: str
) -> None:
    finding = diagnose(f"level=info msg=starting\n{said}\nlevel=info msg=exiting")
    assert finding is not None
    assert missing in finding.missing
    assert finding.evidence == said


def test_words_of_no_known_cause_give_no_diagnosis() -> None:
    assert diagnose('level=warning msg="Your kernel does not support cgroup blkio weight"') is None


def test_cgroup_folders_are_removed_children_first(tmp_path: Path) -> None:
    host = Layout().host(1)
    for controller in ("cpu", "memory"):
        (tmp_path / controller / "clocklab-host1" / "abc" / "def").mkdir(parents=True)
    (tmp_path / "cpu" / "clocklab-host10").mkdir()  # another host's: kept
    assert len(cgroup_folders(host, tmp_path)) == 2
    removed = remove_cgroup_folders(host, tmp_path)
    assert removed == [str(tmp_path / c / "clocklab-host1") for c in ("cpu", "memory")]
    assert cgroup_folders(host, tmp_path) == []
    assert (tmp_path / "cpu" / "clocklab-host10").is_dir()


class FakeImages:
    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels

    def get(self, tag: str) -> Any:
        import docker.errors

        if self.labels is None:
            raise docker.errors.ImageNotFound(tag)
        return type("Image", (), {"labels": self.labels, "id": "sha256:host"})()


def test_a_host_image_from_this_recipe_is_kept_and_one_from_another_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "host-image.sh"
    recipe.write_text("#!/bin/sh\necho built\n")
    builds: list[str] = []
    monkeypatch.setattr(host_image, "_build", lambda tag, say, r, force: builds.append(tag))
    current = {host_image.RECIPE_LABEL: host_image.recipe_digest(recipe)}
    client = type("Client", (), {"images": FakeImages(current)})()
    assert host_image.ensure_host_image(client, "h:1", print, recipe) == "sha256:host"
    assert builds == []
    client.images = FakeImages({host_image.RECIPE_LABEL: "another"})
    with pytest.raises(ClusterError, match="does not carry its recipe's digest"):
        host_image.ensure_host_image(client, "h:1", print, recipe)  # the fake build changes nothing
    assert builds == ["h:1"]


def test_contexts_are_made_once_and_removed_only_when_clocklab_made_them(tmp_path: Path) -> None:
    docker = _fake_docker_cli(tmp_path)
    contexts = Contexts(str(docker))
    layout = Layout(hosts=2, sockets=Path("/run/x"))
    assert contexts.ensure(wanted(layout)) == [
        "clocklab-cluster",
        "clocklab-cluster-host0",
        "clocklab-cluster-host1",
    ]
    assert contexts.existing()["clocklab-cluster"].docker_host == "unix:///run/x/host0/docker.sock"
    assert contexts.ensure(wanted(layout)) == []
    _add_context(tmp_path, "clocklab-cluster-mine", "someone's", "ssh://x")
    assert contexts.remove("clocklab-cluster") == [
        "clocklab-cluster",
        "clocklab-cluster-host0",
        "clocklab-cluster-host1",
    ]
    assert list(contexts.existing()) == ["clocklab-cluster-mine"]


def test_a_context_of_the_same_name_not_made_by_clocklab_is_left_and_named(
    tmp_path: Path,
) -> None:
    docker = _fake_docker_cli(tmp_path)
    _add_context(tmp_path, "clocklab-cluster", "prod", "ssh://x")
    with pytest.raises(ClusterError, match="clocklab-cluster exists and was not made by clocklab"):
        Contexts(str(docker)).ensure(wanted(Layout(hosts=1)))


def _add_context(tmp_path: Path, name: str, description: str, endpoint: str) -> None:
    """A context someone else made, in the fake CLI's store."""
    store = tmp_path / "contexts.json"
    contexts = json.loads(store.read_text())
    contexts[name] = {"Description": description, "DockerEndpoint": endpoint}
    store.write_text(json.dumps(contexts))


def _fake_docker_cli(tmp_path: Path) -> Path:
    """A `docker` that knows `context ls|create|rm`, keeping contexts in a JSON file."""
    store = tmp_path / "contexts.json"
    store.write_text("{}")
    script = tmp_path / "docker"
    script.write_text(
        f"""#!/usr/bin/env python3
import json, sys
store = {str(store)!r}
contexts = json.load(open(store))
args = sys.argv[1:]
if args[:2] == ["context", "ls"]:
    for name, c in contexts.items():
        print(json.dumps({{"Name": name, **c}}))
elif args[:2] == ["context", "create"]:
    name = args[2]
    description = args[args.index("--description") + 1]
    endpoint = args[args.index("--docker") + 1].removeprefix("host=")
    contexts[name] = {{"Description": description, "DockerEndpoint": endpoint}}
elif args[:2] == ["context", "rm"]:
    for name in args[2:]:
        if name != "--force":
            contexts.pop(name)
else:
    sys.exit("unexpected: " + " ".join(args))
json.dump(contexts, open(store, "w"))
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_the_cluster_takes_the_first_free_slash_24_of_its_pool() -> None:
    taken = [IPv4Network("172.17.0.0/16"), IPv4Network("172.31.0.0/24")]
    assert free_subnet(taken) == IPv4Network("172.31.1.0/24")
    with pytest.raises(ClusterError, match=re.escape("every /24 of 172.31.0.0/16 is in use")):
        free_subnet([IPv4Network("172.16.0.0/12")])


def test_a_cluster_is_never_made_inside_one_of_its_own_hosts() -> None:
    host0 = type("Engine", (), {"info": lambda self: {"Labels": ["clocklab.cluster.host=host0"]}})
    with pytest.raises(ClusterError, match=r"is a cluster host \(clocklab.cluster.host=host0\)"):
        refuse_inner_engine(host0())
    machine = type("Engine", (), {"info": lambda self: {"Labels": []}})
    refuse_inner_engine(machine())  # this machine's engine: no complaint
