"""Where a trial's VMs run: plain processes (local), a Compose project, or a Swarm stack.

Every backend is a `Backend`, made for one trial by a `BackendFactory` and
usable from then on: `launch` only starts the VMs. Faults are carried out by
the backend's `fault_parts`, each offering capabilities: `Killable`,
`Pausable`, `Partitionable` for VMs, `HostPartitionable` and `HostCrashable`
for whole hosts. A schedule that asks for one no part offers is refused before
anything starts (`check_schedule`), as is one that breaks a part's own rules
(`ScheduleRules`: a host it lacks, a partition it cannot make).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from orchestrator.errors import ConfigError

if TYPE_CHECKING:  # annotations only: `clocklab check` imports BACKENDS, not the trial code
    from collections.abc import Callable
    from pathlib import Path

    from orchestrator.faults import Fault
    from orchestrator.node_clocks import ClockNode
    from orchestrator.plan import TrialPlan
    from vm_node.rundir import RunDir

BACKENDS = ("docker", "local", "swarm", "sim")  # as --backend names them


class Backend(Protocol):
    """One trial's VMs: starts them, reports their exits, and removes everything it started.

    Made with the trial's plan and run directory; making one starts and writes nothing."""

    name: str

    @property
    def fault_parts(self) -> tuple[object, ...]:
        """What carries out this backend's faults: each part offers some capabilities below."""

    def launch(self) -> None:
        """Start every VM; returns once they are started (not yet ready)."""

    def exit_codes(self) -> dict[int, int | None]:
        """Each VM's exit code, None while it runs."""

    def diagnose(self, vm: int) -> str:
        """The last words of a VM (stderr or container state), for error messages."""

    def teardown(self) -> None:
        """Stop and remove everything launch started; safe to call twice or after a failure."""

    def describe(self) -> dict[str, Any]:
        """Facts for the manifest's `environment`: versions, image, ports."""


@runtime_checkable
class Killable(Protocol):
    def kill(self, vm: int) -> None: ...

    def restart(self, vm: int) -> None:
        """Start the VM again: its next incarnation, same name and log directory."""


@runtime_checkable
class Pausable(Protocol):
    def pause(self, vm: int) -> None: ...

    def unpause(self, vm: int) -> None: ...


@runtime_checkable
class Partitionable(Protocol):
    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None: ...

    def heal(self) -> None: ...


@runtime_checkable
class HostPartitionable(Protocol):
    """Cut host i (of the trial's nodes, in order) off from all others, and reconnect it."""

    def cut_off_host(self, host: int) -> None: ...

    def reconnect_host(self, host: int) -> None: ...


@runtime_checkable
class HostCrashable(Protocol):
    """Crash host i with every VM on it, and start it again (its VMs as new incarnations)."""

    def crash_host(self, host: int) -> tuple[int, ...]:
        """Kill the host; the VMs that went down with it."""

    def restart_host(self, host: int) -> None: ...


@runtime_checkable
class Watchable(Protocol):
    """A backend told by its engine when a VM starts or exits: waits end at once then."""

    def wait_for_change(self, timeout: float) -> None: ...


@runtime_checkable
class ClockNodes(Protocol):
    """A backend whose nodes' clocks the orchestrator can read (orchestrator.node_clocks)."""

    def clock_nodes(self) -> list[ClockNode]:
        """Each node the VMs run on: its name, its VMs, and how to start a Python there."""


# Makes the backend of one trial: its plan, and the directory its logs go to.
BackendFactory: TypeAlias = "Callable[[TrialPlan, RunDir], Backend]"

CAPABILITIES: dict[str, type] = {
    "kill": Killable,
    "pause": Pausable,
    "partition": Partitionable,
    "host_partition": HostPartitionable,
    "host_crash": HostCrashable,
}


# Where a fault kind a backend lacks can be had.
ELSEWHERE = {
    "kill": "--backend docker, or swarm with a Docker context for each node",
    "pause": "--backend docker, or swarm with a Docker context for each node",
    "partition": "--backend docker, or swarm with a Docker context for each node",
    "host_partition": "the swarm backend, with a Docker context for each node",
    "host_crash": "the swarm backend on a simulated cluster (clocklab cluster up), or on real "
    "hosts with a Docker context for each node",
}


def offered_faults(backend: Backend) -> list[str]:
    """The fault kinds carried out by `backend` (link conditions need none: the VMs apply them)."""
    parts = backend.fault_parts
    return [
        kind for kind, offer in CAPABILITIES.items() if any(isinstance(p, offer) for p in parts)
    ]


def carrier(parts: tuple[object, ...], kind: str) -> object | None:
    """The part that carries out faults of `kind`: the first of `parts` that offers it (as
    the injector picks it); None for a kind the VMs apply themselves, or that none offers."""
    offer = CAPABILITIES.get(kind)
    if offer is None:
        return None
    return next((p for p in parts if isinstance(p, offer)), None)


@runtime_checkable
class ScheduleRules(Protocol):
    """A fault part with rules of its own for a schedule: which hosts it has, which
    partitions it can make. Asked before anything starts, like the capabilities."""

    def check_fault(self, field: str, fault: Fault, vms: int) -> None:
        """Raise ConfigError naming `field` where `fault` cannot be carried out here."""


def check_schedule(faults: tuple[Fault, ...], vms: int, backend: Backend) -> None:
    """Every check of a schedule against a backend, made before a trial touches anything:
    a part of the backend offers every fault kind named, and each part's rules accept
    each fault."""
    offered = offered_faults(backend)
    rules = [p for p in backend.fault_parts if isinstance(p, ScheduleRules)]
    for i, fault in enumerate(faults):
        if fault.kind in CAPABILITIES and fault.kind not in offered:
            raise ConfigError(
                f"faults[{i}].kind",
                f"the {backend.name} backend cannot {fault.kind} "
                f"(it can: {', '.join(offered) or 'none'}); {fault.kind} needs "
                f"{ELSEWHERE[fault.kind]}",
            )
        for part in rules:
            part.check_fault(f"faults[{i}]", fault, vms)


def last_words(output: Path, vm: int, lines: int = 5) -> str:
    """The last lines VM `vm` printed besides its log (output/vm<i>.log), joined by " / "."""
    path = output / f"vm{vm}.log"
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return " / ".join(text.splitlines()[-lines:])
