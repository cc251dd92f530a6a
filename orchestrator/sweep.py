"""`clocklab sweep`: every cell of a grid, K trials each, several at once, in one directory.

    <out>/
        trials/<cell>/trial-<k>/   every trial, as `clocklab up` writes it
        vms.csv, vms.parquet       one row per VM-trial: measured against predicted
        phase.png                  where queues grow, with the model's boundary
        sweep.json                 the grid, timings, fidelity and the model's scores

A trial whose manifest says `completed` is not run again, so an interrupted
sweep resumes where it stopped. Before starting, the fidelity guard
(fidelity.py) predicts the worst VM's rate error from the jitter measured
here; then a probe runs the busiest cell as many times at once as the sweep
will, on the machine as it is, and predicts again from the jitter it saw.
After the trials, sweep.json counts the VMs beyond the bound.
"""

from __future__ import annotations

import json
import queue
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analysis.errors import NoRunsError
from analysis.metrics.sweep import VmRow, rows_under
from orchestrator.backends import Backend
from orchestrator.events import Reporter, SweepProgress
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial
from vm_node.rundir import ManifestError, RunDir


@dataclass(frozen=True, slots=True)
class Job:
    cell: Experiment
    trial: int


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    ran: int
    skipped: int  # finished in an earlier run
    failed: tuple[str, ...]  # "<cell>/trial-<k>: <error>"
    seconds: float  # wall time of the trials


def trials_dir(sweep_dir: Path) -> Path:
    return sweep_dir / "trials"


def ticks_per_second(cell: Experiment) -> float:
    """Real ticks per second of one trial of `cell` at most (every VM at the top rate)."""
    return cell.vms * max(cell.rates or cell.rate_range or (1.0,)) * cell.time_scale


def probe(
    cells: list[Experiment],
    concurrency: int,
    backend_for: Callable[[int], Backend],
    probe_dir: Path,
    report: Reporter,
) -> list[VmRow]:
    """Run the busiest cell `concurrency` times at once, as the sweep will run, on the
    machine as it is now; returns its VMs, measured."""
    busiest = max(cells, key=ticks_per_second)
    if probe_dir.exists():
        shutil.rmtree(probe_dir)  # a probe measures now, never an earlier run
    probe_cell = replace(busiest, trials=concurrency)
    run_trials([probe_cell], probe_dir, concurrency, backend_for, report, label="fidelity probe")
    try:
        return rows_under(trials_dir(probe_dir))
    except NoRunsError:  # no probe trial wrote a log
        return []


def finished(run_dir: Path) -> bool:
    try:
        return RunDir(run_dir).read_manifest().completed
    except ManifestError:
        return False


def jobs_of(cells: list[Experiment]) -> list[Job]:
    return [Job(c, k) for c in cells for k in range(1, c.trials + 1)]


def unfinished(jobs: list[Job], sweep_dir: Path) -> list[Job]:
    """The jobs whose trial has not completed in an earlier run."""
    out = trials_dir(sweep_dir)
    return [j for j in jobs if not finished(out / j.cell.name / f"trial-{j.trial}")]


def run_trials(
    cells: list[Experiment],
    sweep_dir: Path,
    concurrency: int,
    backend_for: Callable[[int], Backend],
    report: Reporter,
    label: str = "sweep",
) -> SweepOutcome:
    """Run every unfinished trial of every cell, `concurrency` at a time, reporting how many
    are done. A signal cancels the trials not yet started; running ones tear down."""
    out = trials_dir(sweep_dir)
    jobs = jobs_of(cells)
    todo = unfinished(jobs, sweep_dir)
    slots: queue.Queue[int] = queue.Queue()  # a slot owns a block of local ports
    for slot in range(concurrency):
        slots.put(slot)

    def run(job: Job) -> str | None:
        slot = slots.get()
        try:
            result = Trial(plan_trial(job.cell, job.trial), backend_for(slot), out).run()
        finally:
            slots.put(slot)
        return None if result.ok else f"{job.cell.name}/trial-{job.trial}: {result.error}"

    failed: list[str] = []
    done = len(jobs) - len(todo)
    detail = f"({done} done before, {len(cells)} cells)" if done else f"({len(cells)} cells)"
    report(SweepProgress(label, done, len(jobs), detail=detail))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: set[Future[str | None]] = {pool.submit(run, j) for j in todo}
        try:
            while pending:
                finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished_now:
                    if (error := future.result()) is not None:
                        failed.append(error)
                    done += 1
                report(SweepProgress(label, done, len(jobs), len(failed), detail))
        except BaseException:  # Ctrl-C, SIGTERM: running trials end on their own,
            for future in pending:  # the rest never start
                future.cancel()
            raise
    return SweepOutcome(len(todo), len(jobs) - len(todo), tuple(failed), time.monotonic() - started)


def rate_errors(sweep_dir: Path) -> list[float]:
    """|achieved / configured - 1| of every VM of every completed trial, from its manifest."""
    errors = []
    for manifest_path in sorted(trials_dir(sweep_dir).glob("*/trial-*/manifest.json")):
        manifest = RunDir(manifest_path.parent).read_manifest()
        if not manifest.completed:
            continue
        for stop in manifest.vm_summaries.values():
            achieved, configured = stop.get("rate_achieved"), stop.get("rate_configured")
            if achieved and configured:
                errors.append(abs(achieved / configured - 1))
    return errors


def write_summary(sweep_dir: Path, summary: dict[str, Any]) -> Path:
    path = sweep_dir / "sweep.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path
