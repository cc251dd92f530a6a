"""Where a trial's VMs run: plain processes, a Compose stack, or a Swarm stack."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from orchestrator.plan import TrialPlan
from orchestrator.rundir import RunDir


class FaultTarget(Protocol):
    """What the fault injector needs: only the kinds in supported_faults are called."""

    supported_faults: frozenset[str]  # of kill, pause, partition

    def kill(self, vm: int) -> None: ...

    def restart(self, vm: int) -> None: ...

    def pause(self, vm: int) -> None: ...

    def resume(self, vm: int) -> None: ...

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None: ...

    def heal(self) -> None: ...


@runtime_checkable
class HostFaultTarget(Protocol):
    """A backend that can also cut a whole host off (host_partition) and reconnect it."""

    def cut_off_host(self, host: int) -> None: ...

    def reconnect_host(self, host: int) -> None: ...


class Backend(FaultTarget, Protocol):
    """Starts a trial's VMs, reports their exits, and removes everything it started."""

    name: str

    def launch(self, plan: TrialPlan, run_dir: RunDir) -> None:
        """Start every VM; returns once they are started (not yet ready)."""

    def exit_codes(self) -> dict[int, int | None]:
        """Each VM's exit code, None while it runs."""

    def diagnose(self, vm: int) -> str:
        """The last words of a VM (stderr or container logs), for error messages."""

    def teardown(self) -> None:
        """Stop and remove everything launch started; safe to call twice or after a failure."""

    def describe(self) -> dict[str, Any]:
        """Facts for the manifest: versions, image, ports."""
