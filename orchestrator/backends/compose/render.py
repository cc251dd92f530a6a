"""Renders compose/stack.yaml into one trial's compose file: vm0..vm<N-1>.

The swarm backend starts from the same document (backends/swarm/render.py).
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.auth import KEY_FILE_ENV, SECRET, SECRET_TARGET
from orchestrator.engine import LABEL_VM
from orchestrator.plan import TrialPlan
from orchestrator.resources import shipped

FIRST_ADDRESS = 10  # VM i is at the lab subnet's host number FIRST_ADDRESS + i
MTU_OPTION = "com.docker.network.driver.mtu"  # bridge and overlay drivers alike


@dataclass(frozen=True, slots=True)
class LabAddresses:
    """The lab network's subnet, and each VM's address on it."""

    subnet: ipaddress.IPv4Network

    def of(self, vm: int) -> str:
        return str(self.subnet[FIRST_ADDRESS + vm])


def render_stack(
    plan: TrialPlan,
    image: str,
    labels: dict[str, str],
    key_file: Path | None = None,
    template: Path | None = None,
    lab: LabAddresses | None = None,
) -> dict[str, Any]:
    """The trial's compose document: one service per VM, every object labelled.

    With `key_file`, every VM gets it as a secret (its path is in the document, never the key).
    With `lab`, each VM has its address on the lab network and is told its peers': a
    fleet starting asks no name server (a restarted VM keeps its address).
    """
    source = template or shipped("compose") / "stack.yaml"
    document: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    prototype = document["services"].pop("vm")
    for vm in range(plan.vms):
        service = copy.deepcopy(prototype)
        service["image"] = image
        service["hostname"] = f"vm{vm}"
        service["environment"] = service.get("environment", {}) | plan.vm_settings(vm)
        service["labels"] = labels | {LABEL_VM: str(vm)}
        if key_file is not None:
            service["secrets"] = [SECRET]
            service["environment"][KEY_FILE_ENV] = SECRET_TARGET
        if lab is not None:
            service["networks"] = {"lab": {"ipv4_address": lab.of(vm)}}
            port = service["environment"]["CLOCKLAB_PORT"]  # one port for all (the template)
            service["environment"]["CLOCKLAB_START_PEERS"] = ",".join(
                f"{j}={lab.of(j)}:{port}" for j in range(plan.vms) if j != vm
            )
        document["services"][f"vm{vm}"] = service
    if key_file is not None:
        document["secrets"] = {SECRET: {"file": str(key_file), "labels": dict(labels)}}
    for network in document["networks"].values():
        network["labels"] = dict(labels)
        if plan.experiment.mtu is not None:
            network["driver_opts"] = {MTU_OPTION: str(plan.experiment.mtu)}
    if lab is not None:
        document["networks"]["lab"]["ipam"] = {"config": [{"subnet": str(lab.subnet)}]}
    return document


def write_stack(document: dict[str, Any], path: Path) -> None:
    header = "# Rendered by clocklab from compose/stack.yaml for this trial.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
