"""A trial's plan: everything drawn from the experiment's seed, before anything starts.

The same experiment, trial number and seed always give the same rates and VM
seeds, whatever the backend.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.experiment import Experiment

NAME_IN_PROJECT = 20  # characters of the experiment's name in the project name


@dataclass(frozen=True, slots=True)
class TrialPlan:
    experiment: Experiment
    trial: int
    run: str  # unique run id: frames from other runs are rejected
    rates: tuple[float, ...]  # ticks per simulated second, one per VM
    vm_seeds: tuple[int, ...]
    hosts: int = 1  # VM i runs on host i mod hosts (a backend over several hosts sets it)

    @property
    def vms(self) -> int:
        return self.experiment.vms

    @property
    def project(self) -> str:
        """The Compose project and Swarm stack: named by the run id, so that two runs of one
        trial do not meet. Lowercase without dots (Compose v2), and short enough that
        `<stack>_vm<i>` stays within Swarm's 63 characters."""
        name = self.experiment.name.replace("_", "-")[:NAME_IN_PROJECT]
        rest = self.run.removeprefix(f"{self.experiment.name}-").lower()
        return f"clocklab-{name}-{rest}"

    @property
    def real_duration(self) -> float:
        return self.experiment.duration / self.experiment.time_scale

    def vm_settings(self, vm: int) -> dict[str, str]:
        """vm_node's settings for VM `vm`, as CLOCKLAB_* environment variables."""
        e = self.experiment
        settings: dict[str, Any] = {
            "vm": vm,
            "vms": e.vms,
            "rate": self.rates[vm],
            "event_range": e.event_range,
            "duration": e.duration,
            "time_scale": e.time_scale,
            "seed": self.vm_seeds[vm],
            "run": self.run,
        }
        if e.network or e.faults:
            settings["links"] = json.dumps(e.link_conditions())
        if offset := e.skew.offset(vm, self.hosts):
            settings["clock_offset"] = offset
        if e.realtime:
            settings["realtime"] = 1
        return {f"CLOCKLAB_{k.upper()}": str(v) for k, v in settings.items()}


def draw_rates(experiment: Experiment, trial: int) -> tuple[float, ...]:
    """Listed rates as they are; else drawn from rate_range (integers if both ends are)."""
    if experiment.rates is not None:
        return experiment.rates
    assert experiment.rate_range is not None
    low, high = experiment.rate_range
    rng = random.Random(f"clocklab:{experiment.seed}:{trial}:rates")
    if float(low).is_integer() and float(high).is_integer():
        return tuple(float(rng.randint(int(low), int(high))) for _ in range(experiment.vms))
    return tuple(round(rng.uniform(low, high), 6) for _ in range(experiment.vms))


def plan_trial(experiment: Experiment, trial: int) -> TrialPlan:
    vm_seeds = tuple(
        random.Random(f"clocklab:{experiment.seed}:{trial}:vm{i}").getrandbits(52)
        for i in range(experiment.vms)
    )
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    run = f"{experiment.name}-t{trial}-{stamp}-{secrets.token_hex(2)}"
    return TrialPlan(experiment, trial, run, draw_rates(experiment, trial), vm_seeds)
