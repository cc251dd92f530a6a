"""Machines joined over ssh: three bare simulated hosts (sshd, an engine, nothing else) made a
cluster by `clocklab cluster join ssh://root@ADDRESS ...`, as a user joins real machines, and
every fault run across them.

The docker CLI's config (contexts, join's record) is a folder of the module's own
(DOCKER_CONFIG), and so is the ssh client's (bench.ssh_access): the user's are
untouched. The hosts carry this test session's label and are removed at the module's
end. What the test looks at inside a host, it asks that host's engine through the
host's container on this machine: never the path a trial takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from session import OURS

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from analysis.offsets import offset_bounds
from bench.ssh_access import SshAccess
from orchestrator.cluster import hosts
from orchestrator.cluster.layout import Layout

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BARE = Layout(hosts=3, name="clocklab-joinable", bare=True)
CLUSTER = [sys.executable, "-m", "orchestrator.cli", "cluster"]
SKEW = 0.3  # host1's clock, as the experiment simulates it
# One fault at a time, the first once the launch is over: it makes the partitions'
# helpers over ssh after the VMs' agreed start, and a fault due before then runs late.
EVERY_FAULT = f"""
name: joined
vms: 6
rate_range: [1, 6]
event_range: 10
duration: 60
time_scale: 2
seed: 2026
skew: {{hosts: {{1: {SKEW}}}}}
faults:
  - {{kind: kill, at: 12, duration: 5, target: 0}}
  - {{kind: pause, at: 19, duration: 5, target: 2}}
  - {{kind: partition, at: 26, duration: 6, groups: [[0, 1, 2, 3], [4, 5]]}}
  - {{kind: host_crash, at: 34, duration: 6, host: 1}}
  - {{kind: host_partition, at: 44, duration: 6, host: 2}}
"""
A_KILL = """
name: found
vms: 3
rate_range: [1, 6]
event_range: 10
duration: 20
time_scale: 2
seed: 7
faults:
  - {kind: kill, at: 6, duration: 4, target: 1}
"""


@dataclass(frozen=True, slots=True)
class Machines:
    """Three bare hosts, the file that names them, and the environment that reaches them."""

    outer: Any  # this machine's engine, which runs the hosts' containers
    env: dict[str, str]
    docker_config: Path
    hosts_file: Path
    addresses: list[str]
    found: list[dict[str, list[str]]]  # each host's containers, networks and volumes, as made


def run(command: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """Run `command`; its stderr (where clocklab reports), after asserting it succeeded."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stderr


def swarm_trial(experiment: str, tmp_path: Path, env: dict[str, str]) -> Path:
    """Trial 1 of `experiment` (YAML text) on the joined swarm; its run directory."""
    path = tmp_path / "experiment.yaml"
    path.write_text(experiment)
    trial = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "swarm"]
    trial += ["--context", "clocklab-cluster", "--experiment", str(path)]
    run([*trial, "--out", str(tmp_path / "runs")], env, timeout=300)
    (run_dir,) = (tmp_path / "runs").glob("*/trial-1")
    return run_dir


def on_host(outer: Any, host: int, *command: str) -> str:
    """`command`'s output in host `host` (a docker command there reaches its own engine)."""
    code, out = outer.containers.get(BARE.host(host).container).exec_run(list(command))
    assert code == 0, out
    return str(out.decode().strip())


def swarm_state(outer: Any, host: int) -> tuple[str, str]:
    """(state, node id) of host `host`'s engine in its swarm."""
    info = on_host(outer, host, "docker", "info", "--format", "{{json .Swarm}}")
    swarm = json.loads(info)
    return swarm["LocalNodeState"], swarm["NodeID"]


def inventory(outer: Any, host: int) -> dict[str, list[str]]:
    """Host `host`'s containers, networks and volumes, by name."""

    def names(*listing: str) -> list[str]:
        return sorted(on_host(outer, host, "docker", *listing).split())

    return {
        "containers": names("ps", "-a", "--format", "{{.Names}}"),
        "networks": names("network", "ls", "--format", "{{.Name}}"),
        "volumes": names("volume", "ls", "--format", "{{.Name}}"),
    }


def contexts(env: dict[str, str]) -> list[str]:
    listed = subprocess.run(
        ["docker", "context", "ls", "--format", "{{.Name}}"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def assert_nothing_left(machines: Machines, before: list[dict[str, list[str]]]) -> None:
    """No context of the cluster, and each host holding what it held `before`: no container
    (no VM, helper or reader), network or volume of a trial."""
    assert contexts(machines.env) == ["default"]
    assert not (machines.docker_config / "clocklab").exists()  # join's record
    for host in BARE.all_hosts():
        now = inventory(machines.outer, host.index)
        found = before[host.index]
        assert now["containers"] == found["containers"] == [], host.hostname
        assert now["volumes"] == found["volumes"], host.hostname
        # a swarm, once joined, leaves the engine its bridge to the overlay networks
        bridge = {"docker_gwbridge"}
        assert set(now["networks"]) - bridge == set(found["networks"]) - bridge, now
        labelled = on_host(machines.outer, host.index, "docker", "ps", "-aq", "-f", f"label={OURS}")
        assert labelled == "", host.hostname


@pytest.fixture(scope="module")
def machines(
    docker_client: Any, vm_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Machines]:
    if hosts.host_containers(docker_client):
        pytest.skip("a simulated cluster exists here: its hosts take the names this test needs")
    folder = tmp_path_factory.mktemp("machines")
    ssh = SshAccess(folder / "ssh")
    docker_config = folder / "docker"
    env = ssh.env(os.environ) | {"DOCKER_CONFIG": str(docker_config)}
    bare = ["--name", BARE.name]
    try:
        key = ["--authorized-key", str(ssh.public_key)]
        run([*CLUSTER, "up", "--bare", "--hosts", "3", *key, *bare], env)
        addresses = [hosts.host_address(docker_client, BARE, h) for h in BARE.all_hosts()]
        hosts_file = folder / "machines"
        hosts_file.write_text("".join(f"ssh://root@{a}  # host\n" for a in addresses))
        found = [inventory(docker_client, i) for i in range(3)]
        yield Machines(docker_client, env, docker_config, hosts_file, addresses, found)
    finally:
        run([*CLUSTER, "down"], env)
        run([*CLUSTER, "down", *bare], env)
    assert hosts.cluster_containers(docker_client, BARE.name) == []


def test_joined_hosts_run_every_fault_with_skew_and_are_left_as_found(
    machines: Machines, vm_image: str, tmp_path: Path
) -> None:
    outer, env = machines.outer, machines.env
    assert [swarm_state(outer, i)[0] for i in range(3)] == ["inactive"] * 3
    began = time.monotonic()

    joined = run([*CLUSTER, "join", "--hosts-file", str(machines.hosts_file)], env)
    assert "swarm made on host0" in joined
    assert "into host0, host1, host2" in joined  # the image shipped by clocklab
    for host in range(3):  # over each host's own engine, the same image
        assert on_host(outer, host, "docker", "image", "inspect", "-f", "{{.Id}}", vm_image)
    for host in range(3):  # no label says the engines are simulated
        labels = on_host(outer, host, "docker", "info", "--format", "{{json .Labels}}")
        assert labels in ("[]", "null"), labels
    status = run([*CLUSTER, "status"], env | {"COLUMNS": "120"})  # the table unwrapped
    print(status)
    assert status.count("worker ready") == 2 and "manager ready" in status

    run_dir = swarm_trial(EVERY_FAULT, tmp_path, env)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    environment = manifest["environment"]
    assert environment["placement"] == {str(v): f"host{v % 3}" for v in range(6)}
    assert "cluster" not in environment  # real machines: no simulated cluster
    kinds = ["kill", "pause", "partition", "host_crash", "host_partition"]
    assert [f["kind"] for f in manifest["faults"]] == kinds
    assert all("errors" not in fault for fault in manifest["faults"]), manifest["faults"]
    assert "host1_killed_s" in environment  # the crash went through host1's engine
    assert "node_clock_errors" not in environment  # host1's clock reader outlived its VMs

    check = check_trial(load_trial(run_dir))  # the tolerance the offsets give
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    assert_offsets_recovered(run_dir)
    assert_crash_lost_no_line(run_dir, environment)
    for host in range(3):  # the trial's containers, helpers and volumes are gone
        assert inventory(outer, host)["containers"] == [], host
        assert inventory(outer, host)["volumes"] == [], host

    again = run([*CLUSTER, "join", "--hosts-file", str(machines.hosts_file)], env)
    assert "loading" not in again and "swarm made" not in again and "host1 joined" not in again

    down = run([*CLUSTER, "down"], env)
    assert "swarm on host0 dissolved" in down
    assert [swarm_state(outer, i)[0] for i in range(3)] == ["inactive"] * 3
    assert_nothing_left(machines, machines.found)
    print(f"join, trial and down: {time.monotonic() - began:.1f} s")


def assert_offsets_recovered(run_dir: Path) -> None:
    """The hosts share one clock and host1's VMs add SKEW: every bound holds that, and each
    pair of hosts is bounded on both sides, host1's offset told apart from none."""
    offsets = offset_bounds(run_dir)
    assert offsets.nodes == ("host0", "host1", "host2")
    configured = np.array([SKEW if vm % 3 == 1 else 0.0 for vm in range(6)])
    assert offsets.configured.tolist() == configured.tolist()
    assert offsets.vms.holds(offsets.configured_difference).all()
    assert offsets.hosts.holds(np.zeros((3, 3))).all()
    print("host pairs' bounds (s):", offsets.hosts.low.round(4), offsets.hosts.high.round(4))
    width = offsets.hosts.width
    assert np.isfinite(width).all(), width
    # host1's VMs against the others', narrower than SKEW: the logs alone tell it from 0
    assert width[1, 0] < SKEW and width[1, 2] < SKEW, width
    read = sorted((m.node, m.phase) for m in offsets.measured)
    assert read == sorted((node, phase) for node in offsets.nodes for phase in ("start", "end"))
    for measured in offsets.measured:  # read on the nodes: one clock, within the read's error
        assert abs(measured.offset) <= measured.uncertainty + 0.005, measured


def assert_crash_lost_no_line(run_dir: Path, environment: dict[str, Any]) -> None:
    """Host1's VMs died with the host: each first incarnation's file has every line from
    seq 0, none fewer than host1's volume held."""
    on_nodes = environment["logs_on_nodes"]
    files = sorted(p.name for p in (run_dir / "logs").glob("*.jsonl"))
    assert sorted(on_nodes) == files  # every file the VMs wrote was read from its node
    for name in ("vm1.jsonl", "vm4.jsonl"):
        lines = [json.loads(x) for x in (run_dir / "logs" / name).read_text().splitlines()]
        assert [line["seq"] for line in lines] == list(range(len(lines))), name
        assert lines[-1]["event"] != "stop", name  # it died: no orderly end
        kept = on_nodes[name]
        assert kept["node"] == "host1" and 0 < kept["lines"] <= len(lines), kept
        print(f"{name}: {kept['lines']} lines on host1's volume, {len(lines)} collected")


def test_machines_in_a_swarm_of_their_own_are_joined_and_left_in_it(
    machines: Machines, tmp_path: Path
) -> None:
    outer, env = machines.outer, machines.env
    manager = machines.addresses[0]
    on_host(outer, 0, "docker", "swarm", "init", "--advertise-addr", manager)
    token = on_host(outer, 0, "docker", "swarm", "join-token", "-q", "worker")
    try:
        for host in (1, 2):
            advertise = ["--advertise-addr", machines.addresses[host]]
            on_host(outer, host, "docker", "swarm", "join", *advertise, "--token", token, manager)
        found = [swarm_state(outer, i) for i in range(3)]
        assert [state for state, _ in found] == ["active"] * 3
        before = [inventory(outer, i) for i in range(3)]

        joined = run([*CLUSTER, "join", "--hosts-file", str(machines.hosts_file)], env)
        assert "swarm made" not in joined and "host1 joined" not in joined
        run_dir = swarm_trial(A_KILL, tmp_path, env)
        check = check_trial(load_trial(run_dir))
        assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]

        down = run([*CLUSTER, "down"], env)
        assert "dissolved" not in down and "left the swarm" not in down
        assert [swarm_state(outer, i) for i in range(3)] == found
        listed = on_host(outer, 0, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
        assert sorted(listed.splitlines()) == ["host0 Ready", "host1 Ready", "host2 Ready"]
        assert_nothing_left(machines, before)
    finally:  # the swarm the test made goes, workers first
        for host in (1, 2, 0):
            outer.containers.get(BARE.host(host).container).exec_run(
                ["docker", "swarm", "leave", "--force"]
            )
