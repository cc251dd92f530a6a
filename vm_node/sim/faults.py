"""The faults a simulation acts out, in simulated seconds after the agreed start."""

from __future__ import annotations

from typing import TypeAlias

import msgspec


class Kill(msgspec.Struct, frozen=True, kw_only=True):
    """VM `vm` is killed `at` simulated seconds into the trial, and started again as a
    new incarnation `down_for` simulated seconds later (never, if None)."""

    vm: int
    at: float
    down_for: float | None = None


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """VM `vm` is frozen from `at` for `duration` simulated seconds."""

    vm: int
    at: float
    duration: float


class Cut(msgspec.Struct, frozen=True, kw_only=True):
    """The network splits into `groups` from `at` for `duration` simulated seconds; a VM
    in no group stays with the largest."""

    groups: tuple[tuple[int, ...], ...]
    at: float
    duration: float

    def sides(self, vms: int) -> list[int]:
        """Each VM's side: the index of its group."""
        largest = max(range(len(self.groups)), key=lambda g: len(self.groups[g]))
        side = [largest] * vms
        for g, group in enumerate(self.groups):
            for vm in group:
                side[vm] = g
        return side


Fault: TypeAlias = Kill | Pause | Cut


def length(fault: Fault) -> float | None:
    """How long the fault lasts, in simulated seconds (None: a kill never undone)."""
    return fault.down_for if isinstance(fault, Kill) else fault.duration
