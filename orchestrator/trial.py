"""One trial from start to finish: launch, wait for ready, run, collect, tear down.

The trial's backend is made for its plan and run directory first, and the
schedule checked against it, before anything is touched. Whatever happens
then (a VM that never comes up, Ctrl-C, an error), the backend is torn down
in `finally`, the logs written so far stay, and the manifest records the
outcome.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from orchestrator.backends import (
    BackendFactory,
    ClockNodes,
    Watchable,
    check_schedule,
    offered_faults,
)
from orchestrator.errors import ClocklabError, Interrupted, TrialError, UnexpectedError
from orchestrator.events import Level, Notice, Phase, Reporter, TrialProgress, ignore
from orchestrator.fidelity import RATE_TOLERANCE, trial_fidelity
from orchestrator.injector import FaultInjector
from orchestrator.monitor import LogFollower, VmProgress
from orchestrator.node_clocks import NodeClocks
from orchestrator.plan import TrialPlan
from orchestrator.poll import poll
from orchestrator.runlock import sole_writer
from orchestrator.shield import signals_deferred
from orchestrator.tracebacks import append_to_log
from vm_node.config import fleet_ready_timeout
from vm_node.errors import name_vms
from vm_node.rundir import Manifest, Outcome, RunDir

# Real seconds between two looks at the logs and the exits. The VMs keep their own
# time, so this only paces the display; a backend that is told of exits wakes sooner.
CHECK_EVERY = 0.25
# Real seconds from launch until every VM has logged `ready`: the VMs' own barrier wait
# and then some, so that VMs which cannot start say why before the orchestrator gives up.
READY_SLACK = 15.0
FINISH_SLACK = 15.0  # real seconds past the planned end before a trial is declared hung


@dataclass(frozen=True, slots=True)
class TrialResult:
    run_dir: RunDir
    manifest: Manifest
    progress: dict[int, VmProgress]

    @property
    def outcome(self) -> Outcome:
        assert self.manifest.outcome is not None
        return self.manifest.outcome

    @property
    def error(self) -> str | None:
        return self.manifest.error

    @property
    def ok(self) -> bool:
        return self.manifest.completed


def tool_versions() -> dict[str, str]:
    try:
        clocklab = version("clocklab")
    except PackageNotFoundError:
        clocklab = "unknown"
    return {"clocklab": clocklab, "python": sys.version.split()[0], "platform": platform.platform()}


def planned_manifest(plan: TrialPlan, backend: str, started_at: float) -> Manifest:
    """The manifest as a trial begins: its plan, outcome `running`."""
    e = plan.experiment
    return Manifest(
        experiment=e.name,
        trial=plan.trial,
        run=plan.run,
        seed=e.seed,
        rates=plan.rates,
        vm_seeds=plan.vm_seeds,
        vms=plan.vms,
        duration=e.duration,
        time_scale=e.time_scale,
        event_range=e.event_range,
        config=e.to_dict(),
        backend=backend,
        versions=tool_versions(),
        outcome=Outcome.RUNNING,
        started_at=started_at,
    )


class Trial:
    def __init__(
        self,
        plan: TrialPlan,
        backends: BackendFactory,
        out: Path,
        report: Reporter = ignore,
        clock: Callable[[], float] = time.time,
        ready_timeout: float | None = None,
        rate_tolerance: float = RATE_TOLERANCE,
    ) -> None:
        self.plan = plan
        self.out = out
        self.run_dir = RunDir.of(out, plan.experiment.name, plan.trial)
        self.backend = backends(plan, self.run_dir)
        self.report = report
        self.clock = clock
        self.rate_tolerance = rate_tolerance
        self.ready_timeout = (
            fleet_ready_timeout(plan.vms) + READY_SLACK if ready_timeout is None else ready_timeout
        )

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def check_schedule(self) -> None:
        """ConfigError where the backend cannot carry out the schedule; nothing is touched."""
        check_schedule(self.plan.experiment.faults, self.plan.vms, self.backend)

    def run(self) -> TrialResult:
        self.check_schedule()
        with sole_writer(self.out, self.plan.experiment.name, self.plan.trial):
            return self._run()

    def _run(self) -> TrialResult:
        run_dir = self.run_dir
        run_dir.empty()
        follower = LogFollower(run_dir, self.plan.vms)
        injector = FaultInjector(
            self.plan.experiment.faults,
            self.backend.fault_parts,
            run_dir.orchestrator_log,
            self.report,
        )
        manifest = planned_manifest(self.plan, self.backend.name, self.clock())
        run_dir.write_manifest(manifest)
        outcome, error = Outcome.FAILED, None
        node_clocks = NodeClocks([])
        try:
            if isinstance(self.backend, ClockNodes):  # their readers start beside the VMs
                node_clocks = NodeClocks(self.backend.clock_nodes(), self.clock)
            self.backend.launch()
            manifest = manifest.with_(launched_at=self.clock())
            self._wait_until_ready(follower)
            node_clocks.measure("start")
            start_at = max(p.start_at or 0.0 for p in follower.progress.values())
            injector.arm(start_at, self.plan.experiment.time_scale)
            self._wait_until_done(follower, injector)
            node_clocks.measure("end")
            outcome = Outcome.COMPLETED
        except (KeyboardInterrupt, Interrupted):
            outcome, error = Outcome.INTERRUPTED, "interrupted by the user"
        except ClocklabError as e:
            error = str(e)
        except Exception as e:  # a bug: its traceback stays with the run, for whoever reads it
            error = f"{type(e).__name__}: {e}"
            raise UnexpectedError(e, append_to_log(e, run_dir.orchestrator_log)) from e
        finally:
            with signals_deferred() as arrived:  # a second Ctrl-C must not cut this short
                injector.finish()
                node_clocks.close()
                for node, why in node_clocks.errors.items():
                    self.report(Notice(f"the clock of {node} was not read: {why}", Level.WARNING))
                try:
                    self.backend.teardown()
                except Exception as e:  # the manifest is written all the same
                    teardown_error: str | None = f"teardown: {type(e).__name__}: {e}"
                else:
                    teardown_error = None
                progress = follower.poll()
                if arrived and outcome is not Outcome.INTERRUPTED:
                    outcome = Outcome.INTERRUPTED
                    error = "interrupted by the user during teardown"
                if outcome is Outcome.COMPLETED:
                    error = _unfinished(progress) or teardown_error
                    outcome = Outcome.FAILED if error else outcome
                elif teardown_error:
                    error = f"{error}; {teardown_error}"
                stops = {str(i): p.stop for i, p in progress.items()}
                manifest = manifest.with_(
                    outcome=outcome,
                    error=error,
                    ended_at=self.clock(),
                    environment=self.backend.describe()
                    | {"faults": offered_faults(self.backend)}
                    | ({"node_clock_errors": node_clocks.errors} if node_clocks.errors else {}),
                    first_tick_at=min(
                        (p.first_tick_at for p in progress.values() if p.first_tick_at),
                        default=None,
                    ),
                    vm_summaries=stops,
                    fidelity=trial_fidelity(stops, self.rate_tolerance, injector.records).to_dict(),
                    faults=injector.records,
                    node_offsets=tuple(node_clocks.offsets),
                )
                run_dir.write_manifest(manifest)
        return TrialResult(run_dir, manifest, progress)

    def _progress(self, follower: LogFollower, phase: Phase) -> None:
        self.report(TrialProgress(self.plan, follower.progress, phase))

    def _sleep(self, seconds: float) -> None:
        if isinstance(self.backend, Watchable):
            self.backend.wait_for_change(seconds)
        else:
            time.sleep(seconds)

    def _wait_until_ready(self, follower: LogFollower) -> None:
        """Until every VM has logged `ready`. A VM that exits first, or the timeout, fails
        the trial with one line: how many VMs never became ready, and why."""

        def ready() -> bool:
            codes = self.backend.exit_codes()
            follower.poll()
            exited = {vm: c for vm, c in codes.items() if c is not None}
            if exited and follower.not_ready():
                vm, code = next(iter(sorted(exited.items())))
                stop = follower.progress[vm].stop
                why = stop["reason"] if stop else self.backend.diagnose(vm)
                raise TrialError(
                    self._never_ready(follower, f"vm{vm} exited with code {code}: {why}")
                )
            self._progress(follower, Phase.STARTING)
            return not follower.not_ready()

        if not poll(ready, self.ready_timeout, CHECK_EVERY, sleep=self._sleep):
            not_ready = follower.not_ready()
            hint = "; ".join(f"vm{i}: {self.backend.diagnose(i)}" for i in not_ready[:3])
            raise TrialError(
                self._never_ready(follower, f"gave up after {self.ready_timeout:g} s ({hint})")
            )

    def _never_ready(self, follower: LogFollower, why: str) -> str:
        not_ready = follower.not_ready()
        named = name_vms(not_ready)
        return f"{len(not_ready)} of {self.plan.vms} VMs never became ready ({named}): {why}"

    def _wait_until_done(self, follower: LogFollower, injector: FaultInjector) -> None:
        def done() -> bool:
            injector.run_due()
            codes = self._fail_if_exited(follower, injector.down).values()
            self._progress(follower, Phase.RUNNING)
            return follower.stopped() and all(c is not None for c in codes)

        timeout = self.plan.real_duration + FINISH_SLACK
        if not poll(done, timeout, CHECK_EVERY, wake=injector.next_due, sleep=self._sleep):
            hung = [i for i, p in follower.progress.items() if p.stop is None]
            names = ", ".join(f"vm{i}" for i in hung)
            hint = "; ".join(f"vm{i}: {why}" for i in hung[:3] if (why := self.backend.diagnose(i)))
            late = f"{names} still running {FINISH_SLACK:g} s past the end"
            raise TrialError(f"{late} ({hint})" if hint else late)
        self._progress(follower, Phase.DONE)

    def _fail_if_exited(
        self, follower: LogFollower, killed: set[int] | None = None
    ) -> dict[int, int | None]:
        """Reads the logs and the exits; returns the exits. A VM that exited without
        logging `stop`, or with an error, fails the trial (unless the fault schedule
        killed it)."""
        codes = self.backend.exit_codes()
        follower.poll()  # after the exits: a VM that exited has written its last line
        for vm, code in codes.items():
            if vm in (killed or set()):
                continue
            if code is not None and (code != 0 or follower.progress[vm].stop is None):
                raise TrialError(f"vm{vm} exited with code {code}: {self.backend.diagnose(vm)}")
        return codes


def _unfinished(progress: dict[int, VmProgress]) -> str | None:
    """Why a trial that ran to its end still failed: a VM that did not stop `completed`."""
    for vm, p in progress.items():
        reason = (p.stop or {}).get("reason")
        if reason != "completed":
            return f"vm{vm} stopped with reason {reason!r}"
    return None
