"""`clocklab sweep`: every cell of a grid, K trials each, several at once, in one directory.

    <out>/
        trials/<cell>/trial-<k>/   every trial, as `clocklab up` writes it
        vms.csv                    one line per VM-trial: measured against predicted
        phase.png                  where queues grow, with the model's boundary
        sweep.json                 the grid, timings, fidelity and the model's scores

A trial whose manifest says `completed` is not run again, so an interrupted
sweep resumes where it stopped. Before starting, a fidelity guard compares the
ticks per real second the sweep demands at its peak with what an idle machine
sustained with every VM within 0.01 % of its rate, then measures the machine
as it is: it runs the busiest cell as many times at once as the sweep will and
refuses when any VM strays beyond 0.01 %. After the trials, every VM's
achieved rate is checked against that bound again.
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

from orchestrator.backends import Backend
from orchestrator.errors import ConfigError
from orchestrator.events import Reporter, SweepProgress
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial
from vm_node.rundir import ManifestError, RunDir

RATE_TOLERANCE = 1e-4  # 0.01 %: the largest |achieved / configured - 1| a VM may show
# Real ticks per second, summed over every VM running at once, that kept every VM
# within RATE_TOLERANCE on this project's idle 2-core machine: `make bench` found the
# local backend faithful up to time scale 3,000 for 3 VMs at rates 1-6 (~20,000 ticks/s).
TICK_BUDGET = 20_000.0


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


def peak_load(cells: list[Experiment], concurrency: int) -> float:
    """Real ticks per second if the `concurrency` busiest trials all ran at once."""
    per_trial = sorted(
        (c.vms * max(c.rates or c.rate_range or (1.0,)) * c.time_scale for c in cells),
        reverse=True,
    )
    return sum(per_trial[:concurrency])


def guard_fidelity(cells: list[Experiment], concurrency: int, budget: float, force: bool) -> str:
    """Refuse a sweep that would demand more ticks per second than keep VMs within 0.01 %
    (with `force`, only warn). Returns what it found, for the user."""
    load = peak_load(cells, concurrency)
    found = (
        f"peak load {load:,.0f} ticks per real second ({concurrency} trials at once), "
        f"budget {budget:,.0f} for every VM within {RATE_TOLERANCE:.2%}"
    )
    if load > budget and not force:
        raise ConfigError(
            "concurrency",
            f"{found}: lower --time-scale or --concurrency, or pass --force to run anyway",
        )
    return found + (" — over budget, forced" if load > budget else "")


def probe_fidelity(
    cells: list[Experiment],
    concurrency: int,
    backend_for: Callable[[int], Backend],
    probe_dir: Path,
    report: Reporter,
) -> tuple[Experiment, list[float]]:
    """Run the busiest cell `concurrency` times at once, as the sweep will run, on the
    machine as it is now; returns that cell and every VM's |achieved / configured - 1|."""
    busiest = max(cells, key=lambda c: peak_load([c], 1))
    probe = replace(busiest, trials=concurrency)
    if probe_dir.exists():
        shutil.rmtree(probe_dir)  # a probe measures now, never an earlier run
    run_trials([probe], probe_dir, concurrency, backend_for, report, label="fidelity probe")
    return busiest, rate_errors(probe_dir)


def judge_probe(
    cell: Experiment, concurrency: int, errors: list[float], tolerance: float, force: bool
) -> str:
    """Refuse (or, with `force`, warn) when the probe saw a VM beyond `tolerance`."""
    worst = max(errors, default=float("nan"))
    beyond = sum(e > tolerance for e in errors)
    found = (
        f"probe: {concurrency} trials of {cell.name} at once at time scale "
        f"{cell.time_scale:g}: worst VM rate error {worst:.4%}, {beyond} of {len(errors)} "
        f"VMs beyond {tolerance:.2%}"
    )
    if (beyond or not errors) and not force:
        raise ConfigError(
            "time_scale",
            f"{found}: lower --time-scale or --concurrency (or wait for a quieter machine), "
            "or pass --force to run anyway",
        )
    return found + (" — forced" if beyond or not errors else "")


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
