"""`clocklab sweep`: every cell of a grid, K trials each, several at once, in one directory.

    <out>/
        trials/<cell>/trial-<k>/   every trial, as `clocklab up` writes it
        vms.csv, vms.parquet       one row per VM-trial: measured against predicted
        phase.png                  where queues grow, with the model's boundary
        sweep.json                 the grid, timings, fidelity and the model's scores

        trials.csv                 one row per trial: its outcome, error and traceback

On the sim backend each trial is checked as it ends (`clocklab check`): a
verdict other than valid fails the trial, naming its seed, and
`clocklab up --backend sim --cell CELL --trial K --seed S` writes the same
logs again; the table's rows come from the check's reading of the logs, so
each trial is loaded once. A trial whose manifest says `completed` is not run
again, so an interrupted sweep resumes where it stopped, and running it again
retries only the trials that failed or never ran. A trial that fails, even with
an unexpected error, is recorded and the sweep goes on. Before starting, the fidelity guard
(fidelity.py) predicts the worst VM's rate error from the jitter measured
here; then a probe runs the busiest cell as many times at once as the sweep
will, on the machine as it is, and predicts again from the jitter it saw. The
probe's trials stay in <out>/probe/ and serve every later run of the sweep.
After the trials, sweep.json counts the VMs beyond the bound.
"""

from __future__ import annotations

import csv
import json
import queue
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from analysis.columns import TrialLog
from analysis.errors import NoRunsError
from analysis.load import load_trial
from analysis.metrics.sweep import VmRow, rows_under, vm_rows
from orchestrator.backend_choice import Backends, trial_of
from orchestrator.backends.sim import Simulated
from orchestrator.errors import ClocklabError, UnexpectedError
from orchestrator.events import Reporter, SweepProgress
from orchestrator.experiment import Experiment
from orchestrator.fidelity import vm_rate_errors
from orchestrator.plan import plan_trial
from vm_node.rundir import ManifestError, RunDir


@dataclass(frozen=True, slots=True)
class Job:
    cell: Experiment
    trial: int


class Failure(msgspec.Struct, frozen=True):
    """A trial that did not complete, or whose check failed: why, where its traceback is
    if it was a bug, and the seed that reproduces a failed check."""

    cell: str
    trial: int
    error: str
    traceback: Path | None = None
    seed: int | None = None

    def __str__(self) -> str:
        where = f" (traceback: {self.traceback})" if self.traceback else ""
        seed = f" (seed {self.seed})" if self.seed is not None else ""
        return f"{self.cell}/trial-{self.trial}{seed}: {self.error}{where}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self, enc_hook=str)  # the path as text
        return data


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    ran: int
    skipped: int  # finished in an earlier run
    failed: tuple[Failure, ...]
    seconds: float  # wall time of the trials
    # The rows of the trials loaded to be checked (sim), by resolved run directory: the
    # sweep's table need not load them again.
    rows: dict[Path, list[VmRow]] = field(default_factory=dict)


def trials_dir(sweep_dir: Path) -> Path:
    return sweep_dir / "trials"


def ticks_per_second(cell: Experiment) -> float:
    """Real ticks per second of one trial of `cell` at most (every VM at the top rate)."""
    return cell.vms * max(cell.rates or cell.rate_range or (1.0,)) * cell.time_scale


def probe(
    cells: list[Experiment],
    concurrency: int,
    backend_for: Callable[[int], Backends],
    probe_dir: Path,
    report: Reporter,
) -> list[VmRow]:
    """Run the busiest cell `concurrency` times at once, as the sweep will run, on the
    machine as it is now; returns its VMs, measured."""
    busiest = max(cells, key=ticks_per_second)
    if probe_dir.exists():
        shutil.rmtree(probe_dir)  # a probe measures now, never an earlier run
    probe_cell = msgspec.structs.replace(busiest, trials=concurrency)
    run_trials([probe_cell], probe_dir, concurrency, backend_for, report, label="fidelity probe")
    return kept_probe(probe_dir)


def kept_probe(probe_dir: Path) -> list[VmRow]:
    """The VMs of the probe's trials as an earlier probe left them (none: no probe ran)."""
    if not trials_dir(probe_dir).is_dir():
        return []
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
    backend_for: Callable[[int], Backends],
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

    def run(job: Job) -> Failure | None:
        slot = slots.get()
        backends = backend_for(slot)
        try:
            result = trial_of(plan_trial(job.cell, job.trial), backends, out).run()
        except UnexpectedError as e:  # a bug in this trial: its traceback is in its run
            return Failure(job.cell.name, job.trial, _one_line(e.error), e.traceback_file)
        except ClocklabError as e:
            return Failure(job.cell.name, job.trial, str(e))
        except Exception as e:  # a bug before the trial had a run directory
            return Failure(job.cell.name, job.trial, _one_line(e), _keep_traceback(e, out, job))
        finally:
            slots.put(slot)
        if not result.ok:
            return Failure(job.cell.name, job.trial, result.error or "failed")
        return check(job, result.run_dir) if isinstance(backends, Simulated) else None

    rows: dict[Path, list[VmRow]] = {}

    def check(job: Job, run_dir: RunDir) -> Failure | None:
        """The trial's check, and its rows kept from the same load."""
        trial = load_trial(run_dir.path)
        failure = checked(job, trial)
        rows[run_dir.path.resolve()] = vm_rows(trial)
        return failure

    failed: list[Failure] = []
    if isinstance(backend_for(0), Simulated):  # checks are kept nowhere: check again
        ran_before = [j for j in jobs if j not in todo]
        failed += filter(None, (check(j, RunDir.of(out, j.cell.name, j.trial)) for j in ran_before))
    done = len(jobs) - len(todo)
    detail = f"({done} done before, {len(cells)} cells)" if done else f"({len(cells)} cells)"
    report(SweepProgress(label, done, len(jobs), detail=detail))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: set[Future[Failure | None]] = {pool.submit(run, j) for j in todo}
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
    seconds = time.monotonic() - started
    return SweepOutcome(len(todo), len(jobs) - len(todo), tuple(failed), seconds, rows)


def checked(job: Job, trial: TrialLog) -> Failure | None:
    """The trial's check, as `clocklab check` gives it: a failure naming the seed unless
    the verdict is valid."""
    from analysis.check import Verdict, check_trial

    check = check_trial(trial)
    if check.verdict is Verdict.VALID:
        return None
    first = f": {check.examples[0]}" if check.examples else ""
    error = f"check {check.verdict}{first}"
    return Failure(job.cell.name, job.trial, error, seed=job.cell.seed)


def _one_line(error: BaseException) -> str:
    return f"unexpected {type(error).__name__}: {error}"


def _keep_traceback(error: BaseException, out: Path, job: Job) -> Path:
    path = out / job.cell.name / f"trial-{job.trial}.traceback"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(traceback.format_exception(error)), encoding="utf-8")
    return path


def write_trial_table(sweep_dir: Path, jobs: list[Job], failed: tuple[Failure, ...]) -> Path:
    """trials.csv: every trial of the sweep, with its outcome; a failure's error and
    traceback file where this run saw it fail, else its manifest's error."""
    out = trials_dir(sweep_dir)
    failures = {(f.cell, f.trial): f for f in failed}
    path = sweep_dir / "trials.csv"
    with path.open("w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table)
        writer.writerow(["cell", "trial", "outcome", "error", "traceback", "run_dir"])
        for job in jobs:
            run_dir = out / job.cell.name / f"trial-{job.trial}"
            try:
                manifest = RunDir(run_dir).read_manifest()
                outcome, error = str(manifest.outcome), manifest.error or ""
            except ManifestError:
                outcome, error = "not run", ""
            tb: Path | str = ""
            if (failure := failures.get((job.cell.name, job.trial))) is not None:
                outcome, error, tb = "failed", failure.error, failure.traceback or ""
            writer.writerow([job.cell.name, job.trial, outcome, error, tb, run_dir])
    return path


def rate_errors(sweep_dir: Path) -> list[float]:
    """|achieved / configured - 1| of every VM of every completed trial, from its manifest."""
    errors: list[float] = []
    for manifest_path in sorted(trials_dir(sweep_dir).glob("*/trial-*/manifest.json")):
        manifest = RunDir(manifest_path.parent).read_manifest()
        if not manifest.completed:
            continue
        errors += vm_rate_errors(manifest.vm_summaries).values()
    return errors


def write_summary(sweep_dir: Path, summary: dict[str, Any]) -> Path:
    path = sweep_dir / "sweep.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path
