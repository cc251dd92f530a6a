"""One trial from start to finish: launch, wait for ready, run, collect, tear down.

Whatever happens (a VM that never comes up, Ctrl-C, an error), the backend is
torn down in `finally`, the logs written so far stay, and the manifest
records the outcome.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

from orchestrator.backends import Backend
from orchestrator.errors import ClocklabError, ConfigError, Interrupted, TrialError
from orchestrator.faults import BACKEND_KINDS
from orchestrator.injector import FaultInjector
from orchestrator.monitor import LogFollower, VmProgress
from orchestrator.plan import TrialPlan
from orchestrator.rundir import RunDir
from orchestrator.shield import signals_deferred

READY_TIMEOUT = 60.0  # real seconds from launch until every VM has logged `ready`
FINISH_SLACK = 15.0  # real seconds past the planned end before a trial is declared hung
POLL_INTERVAL = 0.1


class Display(Protocol):
    def update(self, plan: TrialPlan, progress: dict[int, VmProgress], phase: str) -> None: ...


class Silent:
    def update(self, plan: TrialPlan, progress: dict[int, VmProgress], phase: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class TrialResult:
    run_dir: RunDir
    outcome: str  # completed | failed | interrupted
    error: str | None
    progress: dict[int, VmProgress]
    manifest: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"


def check_faults_supported(plan: TrialPlan, backend: Backend) -> None:
    """Before anything starts: the backend must be able to carry out every fault."""
    for i, fault in enumerate(plan.experiment.faults):
        if fault.kind in BACKEND_KINDS and fault.kind not in backend.supported_faults:
            hint = (
                "host faults need the swarm backend on a simulated cluster (clocklab cluster up)"
                if fault.kind.startswith("host_")
                else "try --backend docker"
            )
            raise ConfigError(
                f"faults[{i}].kind",
                f"the {backend.name} backend cannot {fault.kind} (it can: "
                f"{', '.join(sorted(backend.supported_faults)) or 'none'}); {hint}",
            )


def tool_versions() -> dict[str, str]:
    try:
        clocklab = version("clocklab")
    except PackageNotFoundError:
        clocklab = "unknown"
    return {"clocklab": clocklab, "python": sys.version.split()[0], "platform": platform.platform()}


class Trial:
    def __init__(
        self,
        plan: TrialPlan,
        backend: Backend,
        out: Path,
        display: Display | None = None,
        clock: Callable[[], float] = time.time,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.plan = plan
        self.backend = backend
        self.out = out
        self.display = display or Silent()
        self.clock = clock
        self.ready_timeout = ready_timeout

    def run(self) -> TrialResult:
        check_faults_supported(self.plan, self.backend)
        run_dir = RunDir.fresh(self.out, self.plan.experiment.name, self.plan.trial)
        follower = LogFollower(run_dir.logs, self.plan.vms)
        injector = FaultInjector(
            self.plan.experiment.faults, self.backend, run_dir.orchestrator_log
        )
        manifest: dict[str, Any] = self.plan.to_dict() | {
            "config": self.plan.experiment.to_dict(),
            "backend": self.backend.name,
            "versions": tool_versions(),
            "started_at": self.clock(),
            "outcome": "running",
        }
        run_dir.write_manifest(manifest)
        outcome, error = "failed", None
        try:
            self.backend.launch(self.plan, run_dir)
            manifest["launched_at"] = self.clock()
            self._wait_until_ready(follower)
            start_at = max(p.start_at or 0.0 for p in follower.progress.values())
            injector.arm(start_at, self.plan.experiment.time_scale)
            self._wait_until_done(follower, injector)
            outcome = "completed"
        except (KeyboardInterrupt, Interrupted):
            outcome, error = "interrupted", "interrupted by the user"
        except ClocklabError as e:
            error = str(e)
        except Exception as e:  # a bug or an unconverted error: record it, then show it
            error = f"{type(e).__name__}: {e}"
            raise
        finally:
            with signals_deferred() as arrived:  # a second Ctrl-C must not cut this short
                injector.finish()
                self.backend.teardown()
                progress = follower.poll()
                if arrived and outcome != "interrupted":
                    outcome, error = "interrupted", "interrupted by the user during teardown"
                manifest |= {
                    "outcome": outcome,
                    "error": error,
                    "ended_at": self.clock(),
                    "environment": self.backend.describe(),
                    "first_tick_at": min(
                        (p.first_tick_at for p in progress.values() if p.first_tick_at),
                        default=None,
                    ),
                    "vm_summaries": {str(i): p.stop for i, p in progress.items()},
                    "faults": injector.records,
                }
                run_dir.write_manifest(manifest)
        if outcome == "completed":
            outcome, error = self._verdict(progress)
            if outcome != "completed":
                manifest |= {"outcome": outcome, "error": error}
                run_dir.write_manifest(manifest)
        return TrialResult(run_dir, outcome, error, progress, manifest)

    def _wait_until_ready(self, follower: LogFollower) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not_ready := follower.not_ready():
            self._fail_if_exited(follower)
            if time.monotonic() > deadline:
                names = ", ".join(f"vm{i}" for i in not_ready)
                hint = "; ".join(f"vm{i}: {self.backend.diagnose(i)}" for i in not_ready[:3])
                raise TrialError(
                    f"{names} never became ready within {self.ready_timeout:g} s ({hint})"
                )
            self.display.update(self.plan, follower.poll(), "starting")
            time.sleep(POLL_INTERVAL)

    def _wait_until_done(self, follower: LogFollower, injector: FaultInjector) -> None:
        deadline = time.monotonic() + self.plan.real_duration + FINISH_SLACK
        while not (follower.stopped() and all(c is not None for c in self._codes())):
            injector.run_due()
            self._fail_if_exited(follower, injector.down)
            if time.monotonic() > deadline:
                hung = [f"vm{i}" for i, p in follower.progress.items() if p.stop is None]
                raise TrialError(f"{', '.join(hung)} still running {FINISH_SLACK:g} s past the end")
            self.display.update(self.plan, follower.poll(), "running")
            next_fault = injector.next_due()
            wait = POLL_INTERVAL if next_fault is None else next_fault - time.time()
            time.sleep(min(max(wait, 0.0), POLL_INTERVAL))
        self.display.update(self.plan, follower.poll(), "done")

    def _codes(self) -> dict[int, int | None]:
        return self.backend.exit_codes()

    def _fail_if_exited(self, follower: LogFollower, killed: set[int] | None = None) -> None:
        """A VM that exited without logging `stop`, or with an error, fails the trial
        (unless the fault schedule killed it)."""
        follower.poll()
        for vm, code in self._codes().items():
            if vm in (killed or set()):
                continue
            if code is not None and (code != 0 or follower.progress[vm].stop is None):
                raise TrialError(f"vm{vm} exited with code {code}: {self.backend.diagnose(vm)}")

    @staticmethod
    def _verdict(progress: dict[int, VmProgress]) -> tuple[str, str | None]:
        for vm, p in progress.items():
            reason = (p.stop or {}).get("reason")
            if reason != "completed":
                return "failed", f"vm{vm} stopped with reason {reason!r}"
        return "completed", None
