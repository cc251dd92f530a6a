"""Where a restarted VM picks up: its incarnation number and its last logged clocks.

A VM killed by a fault and started again reads them from its earlier
incarnations' logs, or is handed them by the orchestrator where its log
directory did not outlive its container (a Swarm task's tmpfs).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from vm_node.logname import log_name
from vm_node.vocabulary import Event


def next_incarnation(log_dir: str, vm: int) -> int:
    """How many times this VM has run before in this log directory."""
    k = 0
    while os.path.exists(os.path.join(log_dir, log_name(vm, k))):
        k += 1
    return k


class Resume(msgspec.Struct, frozen=True, gc=False):
    """Where a restarted VM picks up: its last logged clocks and the trial's start."""

    lamport: int
    vector: tuple[int, ...]
    start_at: float | None

    def to_json(self, incarnation: int) -> dict[str, Any]:
        """The `resume` setting that hands this to incarnation `incarnation` (config.py)."""
        setting = ResumeSetting(incarnation, self.lamport, self.vector, self.start_at)
        data: dict[str, Any] = msgspec.to_builtins(setting)
        return data


class HandedBack(msgspec.Struct, frozen=True):
    """An incarnation's number and resume state, given by the orchestrator: where the log
    directory does not outlive a VM's container (a Swarm task's tmpfs)."""

    incarnation: int
    resume: Resume


class ResumeSetting(msgspec.Struct, frozen=True):
    """The `resume` setting's JSON: an incarnation and the clocks handed to it, flat."""

    incarnation: int
    lamport: int
    vector: tuple[int, ...]
    start_at: float | None


class _Resumable(msgspec.Struct):
    """What a restart needs of each logged line."""

    event: str
    lamport: int
    vc: dict[str, int]
    start_at: float | None = None


def read_resume(log_dir: str, vm: int, incarnation: int, vms: int) -> Resume | None:
    """The state this VM's earlier incarnations logged, or None on a first run."""
    if incarnation == 0:
        return None
    decoder = msgspec.json.Decoder(_Resumable)
    start_at: float | None = None
    last: _Resumable | None = None
    for k in range(incarnation):
        with open(os.path.join(log_dir, log_name(vm, k)), "rb") as file:
            lines = file.read().splitlines()
        for line in lines:
            try:
                last = decoder.decode(line)
            except msgspec.DecodeError:
                continue  # a line cut by the kill
            if last.event == Event.READY and start_at is None:
                start_at = last.start_at
    if last is None:
        return None
    vector = tuple(last.vc.get(str(j), 0) for j in range(vms))
    return Resume(last.lamport, vector, start_at)
