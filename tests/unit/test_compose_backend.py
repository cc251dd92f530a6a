"""The docker backend's stack: with lab addresses, every VM has its own and knows its peers';
its teardown outlasts an engine still detaching containers from the lab network."""

from __future__ import annotations

import random
from ipaddress import IPv4Network
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from orchestrator import subnets
from orchestrator.backends.compose import ComposeBackend
from orchestrator.backends.compose.docker_compose import Compose
from orchestrator.backends.compose.render import LabAddresses, render_stack
from orchestrator.engine import Endpoint
from orchestrator.errors import BackendUnavailable, CommandError
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from vm_node.rundir import RunDir

LABELS = {"clocklab.run": "r", "clocklab.session": "s"}


def test_each_vm_has_its_address_and_is_told_every_peers() -> None:
    plan = plan_trial(Experiment(name="x", vms=3), 1)
    lab = LabAddresses(IPv4Network("172.30.7.0/24"))
    document = render_stack(plan, "img", LABELS, lab=lab)
    assert document["networks"]["lab"]["ipam"] == {"config": [{"subnet": "172.30.7.0/24"}]}
    vm1 = document["services"]["vm1"]
    assert vm1["networks"] == {"lab": {"ipv4_address": "172.30.7.11"}}
    assert vm1["environment"]["CLOCKLAB_START_PEERS"] == "0=172.30.7.10:5000,2=172.30.7.12:5000"


def test_without_lab_addresses_the_engine_places_the_vms() -> None:
    document = render_stack(plan_trial(Experiment(name="x", vms=2), 1), "img", LABELS)
    assert "ipam" not in document["networks"]["lab"]
    services = document["services"].values()
    assert all("CLOCKLAB_START_PEERS" not in s["environment"] for s in services)


def test_a_free_subnet_overlaps_nothing_in_use() -> None:
    pool = IPv4Network("172.30.0.0/16")
    taken = [IPv4Network("172.30.0.0/17"), IPv4Network("172.30.128.0/18")]
    for seed in range(20):
        chosen = subnets.free(pool, taken, random.Random(seed))
        assert chosen.subnet_of(IPv4Network("172.30.192.0/18"))


class FlakyCompose:
    """`down` fails as a loaded engine's does `failing` times, then succeeds."""

    def __init__(self, failing: int, stderr: str) -> None:
        self.failing, self.stderr, self.downs = failing, stderr, 0

    def version(self) -> str:
        return "2.26.1"

    def down(self, file: Path, project: str) -> None:
        self.downs += 1
        if self.downs <= self.failing:
            raise CommandError(["docker", "compose", "down"], 1, self.stderr)


ACTIVE = "error while removing network: network p_lab id 61 has active endpoints"


def compose_backend(compose: FlakyCompose) -> ComposeBackend:
    plan = plan_trial(Experiment(name="x"), 1)
    return ComposeBackend(plan, RunDir(Path("run")), MagicMock(), "img", compose)  # type: ignore[arg-type]


def test_down_is_repeated_while_the_lab_network_still_has_endpoints() -> None:
    compose = FlakyCompose(2, ACTIVE)
    compose_backend(compose)._down(Path("compose.yaml"), "p")  # type: ignore[arg-type]
    assert compose.downs == 3


def test_any_other_failure_of_down_is_raised_at_once() -> None:
    compose = FlakyCompose(1, "no such file")
    with pytest.raises(CommandError, match="no such file"):
        compose_backend(compose)._down(Path("compose.yaml"), "p")  # type: ignore[arg-type]
    assert compose.downs == 1


def test_compose_is_asked_its_version_once_and_v1_is_refused(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"  # a docker CLI whose compose plugin says what the file says
    docker.write_text(f"#!/bin/sh\necho x >> {calls}\ncat {tmp_path / 'says'}\n")
    docker.chmod(0o755)
    (tmp_path / "says").write_text("v2.26.1\n")
    compose = Compose(Endpoint("unix:///nowhere.sock"), docker=str(docker))
    assert compose.version() == compose.version() == "2.26.1"
    assert len(calls.read_text().splitlines()) == 1
    (tmp_path / "says").write_text("1.29.2\n")
    with pytest.raises(BackendUnavailable, match="not v2"):
        Compose(Endpoint("unix:///nowhere.sock"), docker=str(docker)).version()
