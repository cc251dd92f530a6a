"""Trials on a shared engine: each in a project of its own, each signing its frames.

These drive `clocklab up` itself (not testcontainers' DockerCompose): what is
under test is the orchestrator's own naming, labelling, key handling and
teardown.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from session import OURS, SESSION, labelled
from ticking import wait_until_ticking

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.engine import LABEL_RUN, LABEL_SESSION, LABEL_VM

pytestmark = pytest.mark.docker

FORGED_CLOCK = 10**12
FRAMES_PER_KIND = 20  # unsigned msgs, and as many signed with the wrong key, per VM

# Runs in a container on the trial's network, with the VM image's vm_node.
INTRUDER = """
import socket, sys
from vm_node.wire import Codec
run, vms, n, clock = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for vm in range(vms):
    sender = (vm + 1) % vms
    codecs = (Codec(run, sender, vms), Codec(run, sender, vms, b"not-this-trial's-key"))
    frames = [codec.hello() for codec in codecs]
    for k in range(n):
        for signed, codec in enumerate(codecs):
            vc = {str(j): clock for j in range(vms)}
            frames.append(codec.message(vm, f"forged-{vm}-{k}-{signed}", clock, vc))
    with socket.create_connection((f"vm{vm}", 5000), timeout=10) as conn:
        conn.sendall(b"".join(frames))
print(vms * len(frames))
"""


def up(out: Path, *more: str) -> list[str]:
    return [
        sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker", "--out", str(out),
        *more,
    ]  # fmt: skip


@contextlib.contextmanager
def ticking_trial(out: Path) -> Iterator[Path]:
    """A docker trial of 10 real seconds, from its first tick; it must end with exit 0."""
    run_dir = out / "original" / "trial-1"
    proc = subprocess.Popen(
        up(out, "--duration", "60", "--time-scale", "6"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_ticking(proc, run_dir)
        yield run_dir
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def log_lines(run_dir: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in sorted((run_dir / "logs").glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def test_two_identical_trials_run_at_once_both_valid_and_nothing_is_left(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    timing = ("--duration", "20", "--time-scale", "10")
    outs = [tmp_path / "a", tmp_path / "b"]
    runs = [
        subprocess.Popen(up(out, *timing), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for out in outs
    ]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    manifests = [json.loads((out / "original/trial-1/manifest.json").read_text()) for out in outs]
    projects = {m["environment"]["project"] for m in manifests}
    assert len(projects) == 2  # same experiment and trial number, two projects
    assert all(m["environment"]["session"] == SESSION for m in manifests)
    for out in outs:
        check = check_trial(load_trial(out / "original" / "trial-1"))
        assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    assert labelled(docker_client) == []


def test_an_intruder_on_the_trial_network_moves_no_clock_and_every_frame_is_counted(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    with ticking_trial(tmp_path) as run_dir:
        run = json.loads((run_dir / "manifest.json").read_text())["run"]
        (network,) = docker_client.networks.list(filters={"label": [OURS, f"{LABEL_RUN}={run}"]})
        intruder = docker_client.containers.run(
            vm_image,
            [INTRUDER, run, "3", str(FRAMES_PER_KIND), str(FORGED_CLOCK)],
            entrypoint=["/opt/clocklab/bin/python", "-c"],
            network=network.name,
            labels={LABEL_SESSION: SESSION, LABEL_RUN: f"{run}-intruder"},
            detach=True,
        )
        try:
            assert intruder.wait(timeout=60)["StatusCode"] == 0, intruder.logs().decode()
            sent = int(intruder.logs(stderr=False).decode().strip())
        finally:
            intruder.remove(force=True)
    assert sent == 3 * (2 + 2 * FRAMES_PER_KIND)
    lines = log_lines(run_dir)
    rejected = [line for line in lines if line["event"] == "bad_frame" and "mac" in line["reason"]]
    assert len(rejected) == sent  # every forged frame, hellos included, rejected and counted
    for vm in range(3):
        assert sum(line["vm"] == vm for line in rejected) == sent // 3
    assert max(line["lamport"] for line in lines) < FORGED_CLOCK
    assert not any(line.get("msg_id", "").startswith("forged") for line in lines)
    check = check_trial(load_trial(run_dir))
    assert check.verdict == Verdict.VALID, [str(v) for v in check.examples]
    assert labelled(docker_client) == []


def test_the_key_is_nowhere_in_the_run_directory_nor_in_a_container(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    with ticking_trial(tmp_path) as run_dir:
        stack = (run_dir / "compose.yaml").read_text()
        key_file = Path(stack.split("file: ", 1)[1].split()[0])
        key = key_file.read_text().strip()
        containers = docker_client.containers.list(filters={"label": OURS})
        vms = [c for c in containers if LABEL_VM in c.labels]
        assert len(vms) == 3
        for container in containers:
            environment = "\n".join(container.attrs["Config"]["Env"])
            assert key not in environment
            assert container not in vms or "CLOCKLAB_AUTH_KEY_FILE=" in environment
    assert not key_file.exists()  # removed with the trial
    assert len(key) == 64
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["auth"] is True and manifest["environment"]["auth"] is True
    starts = [line for line in log_lines(run_dir) if line["event"] == "start"]
    assert len(starts) == 3 and all(line["config"]["auth"] is True for line in starts)
