"""Renders compose/stack.yaml into one trial's compose file: vm0..vm<N-1>."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from orchestrator.plan import TrialPlan

TEMPLATE = Path(__file__).resolve().parent.parent / "compose" / "stack.yaml"
LABEL_RUN, LABEL_EXPERIMENT, LABEL_TRIAL, LABEL_VM = (
    "clocklab.run",
    "clocklab.experiment",
    "clocklab.trial",
    "clocklab.vm",
)


def trial_labels(plan: TrialPlan) -> dict[str, str]:
    return {
        LABEL_RUN: plan.run,
        LABEL_EXPERIMENT: plan.experiment.name,
        LABEL_TRIAL: str(plan.trial),
    }


def render_stack(plan: TrialPlan, image: str, template: Path = TEMPLATE) -> dict[str, Any]:
    """The trial's compose document: one service per VM, every object labelled."""
    document: dict[str, Any] = yaml.safe_load(template.read_text(encoding="utf-8"))
    prototype = document["services"].pop("vm")
    labels = trial_labels(plan)
    for vm in range(plan.vms):
        service = copy.deepcopy(prototype)
        service["image"] = image
        service["hostname"] = f"vm{vm}"
        service["environment"] = service.get("environment", {}) | plan.vm_settings(vm)
        service["labels"] = labels | {LABEL_VM: str(vm)}
        document["services"][f"vm{vm}"] = service
    for network in document["networks"].values():
        network["labels"] = dict(labels)
    return document


def write_stack(document: dict[str, Any], path: Path) -> None:
    header = "# Rendered by clocklab from compose/stack.yaml for this trial.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
