"""The simulated cluster: three hosts with their own engines, a swarm trial across them.

These tests make the cluster `clocklab-cluster` on the machine's engine and
remove it in `finally`; where one exists already (someone's), they skip rather
than replace it. The hosts carry this test session's label, so the folder's
leak check sees a host left behind; `no_cluster` checks what it cannot see
(volumes, cgroup folders, contexts, sockets).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.check import Verdict, check_trial
from analysis.check.accounting import account
from analysis.load import load_trial
from orchestrator import cli
from orchestrator.cluster import backend as cluster_backend
from orchestrator.cluster import hosts
from orchestrator.cluster.errors import NestedEngineError
from orchestrator.cluster.layout import LABEL_CLUSTER, Layout
from orchestrator.cluster.lifecycle import Cluster

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAYOUT = Layout(hosts=3)
CLUSTER = [sys.executable, "-m", "orchestrator.cli", "cluster"]


def leftovers(client: Any) -> list[str]:
    """Everything of the cluster still on this machine: Docker objects, cgroups, contexts."""
    label = {"label": f"{LABEL_CLUSTER}={LAYOUT.name}"}
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    for index in range(4):
        found += [f"cgroup {p}" for p in hosts.cgroup_folders(LAYOUT.host(index))]
    contexts = subprocess.run(
        ["docker", "context", "ls", "--format", "{{.Name}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    found += [f"context {c}" for c in contexts if c.startswith(LAYOUT.name)]
    if LAYOUT.sockets.exists():
        found += [f"socket folder {p}" for p in LAYOUT.sockets.iterdir()]
    return found


@pytest.fixture
def no_cluster(docker_client: Any, vm_image: str) -> Iterator[Any]:
    """The machine's engine, with no cluster on it before the test, and none after."""
    if leftovers(docker_client):
        pytest.skip(f"a cluster exists here ({', '.join(leftovers(docker_client)[:3])}, ...)")
    try:
        yield docker_client
    finally:
        down = subprocess.run([*CLUSTER, "down"], capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
    assert leftovers(docker_client) == []


SIX_VMS = """
vms: 6
rate_range: [1, 6]
event_range: 10
duration: 60
time_scale: 4
seed: 2026
"""
ACROSS = (
    SIX_VMS
    + """name: across
faults:
  - {kind: host_partition, at: 8, duration: 8, host: 2}
  - {kind: partition, at: 22, duration: 12, groups: [[0, 1, 2, 4], [3, 5]]}
  - {kind: kill, at: 40, duration: 6, target: 0}
skew: {hosts: {1: 0.3}}
"""
)
CRASH = (
    SIX_VMS
    + """name: crash
faults:
  - {kind: host_crash, at: 20, duration: 12, host: 1}
"""
)


def run_across_hosts(
    experiment_text: str, tmp_path: Path, skew: float = 0.0
) -> tuple[Path, dict[str, Any]]:
    """A 3-host cluster, the experiment on it through --context, checked valid with every
    message accounted for; its run directory and manifest."""
    up = subprocess.run(
        [*CLUSTER, "up", "--hosts", "3"], capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stderr
    nodes = subprocess.run(
        ["docker", "--context", LAYOUT.manager_context, "node", "ls", "--format", "{{.Hostname}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(nodes) == ["host0", "host1", "host2"]

    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(experiment_text)
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "swarm"]
    command += ["--context", LAYOUT.manager_context]
    command += ["--experiment", str(experiment), "--out", str(tmp_path)]
    trial = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert trial.returncode == 0, trial.stderr

    (run_dir,) = tmp_path.glob("*/trial-1")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["placement"] == {str(vm): f"host{vm % 3}" for vm in range(6)}
    assert manifest["environment"]["cluster"] == LAYOUT.name
    assert all("errors" not in fault for fault in manifest["faults"]), manifest["faults"]
    trial_log = load_trial(run_dir)
    check = check_trial(trial_log, skew=skew)
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    books = account(trial_log, skew=skew)
    assert books.sent > 0 and books.vanished == 0 and books.unknown == 0
    assert books.sent == books.received + books.failed + books.dropped + books.queued + books.lost
    return run_dir, manifest


def assert_resumed(run_dir: Path, vm: int, fault: dict[str, Any]) -> None:
    """VM `vm` came back as its second incarnation, ready after the fault's end, its
    clocks going on from where they were, and finished."""
    first, second = incarnations(run_dir, vm)
    ready = next(line for line in second if line["event"] == "ready")
    assert ready["resumed"] is True and ready["timestamp"] >= fault["end"]
    assert second[0]["lamport"] >= first[-1]["lamport"]
    assert second[-1]["event"] == "stop" and second[-1]["reason"] == "completed"


def test_a_six_vm_trial_on_three_hosts_survives_host_and_vm_partitions_and_a_kill(
    no_cluster: Any, tmp_path: Path
) -> None:
    run_dir, manifest = run_across_hosts(ACROSS, tmp_path, skew=0.3)  # host1 is 0.3 s ahead
    trial_log = load_trial(run_dir)
    too_small = check_trial(trial_log, skew=0.05)  # host1's clock is 0.3 s ahead
    assert too_small.verdict == Verdict.INVALID
    assert any("more than --skew 0.05 s" in v.detail for v in too_small.examples)

    host_cut, partition, kill = manifest["faults"]
    assert host_cut["kind"] == "host_partition" and host_cut["host"] == 2
    cut = cut_links(run_dir, host_cut["start"], host_cut["end"])
    assert cut, "no link went down while host2 was cut off"
    assert all((a % 3 == 2) != (b % 3 == 2) for a, b in cut)  # only links across the cut
    assert cut <= links_up_after(run_dir, host_cut["end"])  # and every one of them came back

    # vm3 and vm5 (hosts 0 and 2) apart from the rest: the cut splits hosts 0 and 2 too.
    sides = [{0, 1, 2, 4}, {3, 5}]
    across = {(a, b) for a in sides[0] for b in sides[1]}
    across |= {(b, a) for a, b in across}
    cut = cut_links(run_dir, partition["start"], partition["end"])
    assert across <= cut, sorted(across - cut)  # every link across went down, and only those
    assert cut <= across, sorted(cut - across)  # a side's links, within or across hosts, held
    assert across <= links_up_after(run_dir, partition["end"])
    assert kill["targets"] == [0]
    assert_resumed(run_dir, 0, kill)


def test_a_crashed_host_comes_back_with_its_vms_as_new_incarnations(
    no_cluster: Any, tmp_path: Path
) -> None:
    run_dir, manifest = run_across_hosts(CRASH, tmp_path)
    (crash,) = manifest["faults"]
    assert crash["kind"] == "host_crash" and crash["host"] == 1
    for vm in (1, 4):  # host1's VMs
        assert_resumed(run_dir, vm, crash)


BUSY_CRASH = """name: busycrash
vms: 6
rates: [2, 300, 2, 2, 2, 2]
event_range: 10
duration: 20
seed: 7
faults:
  - {kind: host_crash, at: 8, duration: 4, host: 1}
"""


def test_a_host_crash_loses_no_line_its_vm_wrote_and_leaves_no_volume(
    no_cluster: Any, tmp_path: Path
) -> None:
    # vm1 logs hundreds of lines a second on host1 as it crashes: its engine may not have
    # read the last ones, which only the node's volume still holds.
    run_dir, manifest = run_across_hosts(BUSY_CRASH, tmp_path)
    environment = manifest["environment"]
    on_nodes = environment["logs_on_nodes"]
    files = sorted(p.name for p in (run_dir / "logs").glob("*.jsonl"))
    assert sorted(on_nodes) == files  # every file the VMs wrote was read from its node
    for name in files:
        seqs = [json.loads(x)["seq"] for x in (run_dir / "logs" / name).read_text().splitlines()]
        assert seqs == list(range(on_nodes[name]["lines"])), name  # every line kept, in order
    first, second = incarnations(run_dir, 1)
    assert on_nodes["vm1.jsonl"]["node"] == "host1" and first[-1]["event"] != "stop"
    assert second[-1]["event"] == "stop"
    for host in LAYOUT.all_hosts():
        volumes = subprocess.run(
            ["docker", "--context", host.context, "volume", "ls", "-q"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert environment["log_volume"] not in volumes, host.hostname
    said = (run_dir / "orchestrator.log").read_text().splitlines()
    print("taken from the volumes:", [x for x in said if "log_from_volume" in x])


def test_on_hosts_it_did_not_make_a_host_crash_kills_the_vms_there_and_drains_the_node(
    no_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cluster seen as real hosts: host_crash goes through host1's engine and the
    manager, and host1's engine is not touched."""
    up = subprocess.run(
        [*CLUSTER, "up", "--hosts", "3"], capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stderr
    started = no_cluster.containers.get(LAYOUT.host(1).container).attrs["State"]["StartedAt"]
    monkeypatch.setattr(cluster_backend, "simulated_layout", lambda manager: None)
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(CRASH)
    command = ["up", "--backend", "swarm", "--context", LAYOUT.manager_context]
    code = cli.main([*command, "--experiment", str(experiment), "--out", str(tmp_path)])
    assert code == 0

    (run_dir,) = tmp_path.glob("*/trial-1")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    environment = manifest["environment"]
    assert "cluster" not in environment and "host_crash" in environment["faults"]
    (crash,) = manifest["faults"]
    assert "errors" not in crash, crash
    assert "host1_killed_s" in environment  # through host1's engine, not this machine's
    host1 = no_cluster.containers.get(LAYOUT.host(1).container).attrs["State"]
    assert host1["Running"] and host1["StartedAt"] == started  # its engine stayed up
    for vm in (1, 4):  # host1's VMs
        assert_resumed(run_dir, vm, crash)
    listed = "{{.Hostname}} {{.Availability}}"
    nodes = subprocess.run(
        ["docker", "--context", LAYOUT.manager_context, "node", "ls", "--format", listed],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert "host1 Active" in nodes
    check = check_trial(load_trial(run_dir))
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]


def incarnations(run_dir: Path, vm: int) -> list[list[dict[str, Any]]]:
    """VM `vm`'s log lines, one list per incarnation."""
    paths = [run_dir / "logs" / f"vm{vm}.jsonl", run_dir / "logs" / f"vm{vm}.1.jsonl"]
    return [[json.loads(line) for line in path.read_text().splitlines()] for path in paths]


def _events(run_dir: Path, event: str) -> list[dict[str, Any]]:
    lines = (
        json.loads(line)
        for path in sorted((run_dir / "logs").glob("vm*.jsonl"))
        for line in path.read_text().splitlines()
    )
    return [line for line in lines if line["event"] == event]


def cut_links(run_dir: Path, start: float, end: float) -> set[tuple[int, int]]:
    """(vm, peer) of every link reported down while the host was cut off."""
    downs = _events(run_dir, "peer_down")
    return {(e["vm"], e["peer"]) for e in downs if start <= e["timestamp"] <= end}


def links_up_after(run_dir: Path, end: float) -> set[tuple[int, int]]:
    return {(e["vm"], e["peer"]) for e in _events(run_dir, "peer_up") if e["timestamp"] >= end}


def test_cluster_up_run_again_changes_nothing_and_status_shows_every_host(
    no_cluster: Any,
) -> None:
    first = subprocess.run([*CLUSTER, "up", "--hosts", "2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*CLUSTER, "up", "--hosts", "2"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "started" not in again.stderr and "joined" not in again.stderr
    status = subprocess.run([*CLUSTER, "status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert "manager ready" in status.stderr and "worker ready" in status.stderr


def test_ctrl_c_during_cluster_up_removes_what_it_made(no_cluster: Any) -> None:
    proc = subprocess.Popen([*CLUSTER, "up", "--hosts", "2"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # the first host started: the cluster is half made
        if "container clocklab-host0 started" in line:
            break
        assert time.monotonic() < deadline, "cluster up never started a host"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert leftovers(no_cluster) == []


def test_a_host_without_net_admin_is_refused_naming_the_capability(
    no_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "CAPABILITIES", ("SYS_ADMIN",))
    cluster = Cluster(Layout(hosts=1), no_cluster, say=lambda line: None)
    with pytest.raises(NestedEngineError, match="lacks CAP_NET_ADMIN") as caught:
        cluster.up("clocklab-vm:latest")
    assert caught.value.host == "host0" and "iptables" in str(caught.value)
    assert leftovers(no_cluster) == []  # what up made went again
