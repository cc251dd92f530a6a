"""What a trial reports while it runs; the display layer decides how it looks.

Backends and the image builder never print: they hand events to a `Reporter`
(the CLI's LiveDisplay, a test's list, or `ignore`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeAlias

from orchestrator.monitor import VmProgress
from orchestrator.plan import TrialPlan


class Phase(StrEnum):
    STARTING = "starting"  # launched, waiting for every VM's `ready`
    RUNNING = "running"
    DONE = "done"


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class TrialProgress:
    """The VMs' progress as their logs say, at one moment of a trial."""

    plan: TrialPlan
    vms: Mapping[int, VmProgress]
    phase: Phase


@dataclass(frozen=True, slots=True)
class Notice:
    """One line for the user: a step of an image build, a leftover after teardown."""

    text: str
    level: Level = Level.INFO


Event: TypeAlias = TrialProgress | Notice


class Reporter(Protocol):
    def __call__(self, event: Event) -> None: ...


def ignore(event: Event) -> None:
    """A Reporter that shows nothing (tests, benchmarks)."""
