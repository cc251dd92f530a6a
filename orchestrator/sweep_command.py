"""The `clocklab sweep` command: options, the guard, the probe, the trials, the summary."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import fidelity
from orchestrator.errors import EXIT_FAILED, EXIT_OK, ConfigError

if TYPE_CHECKING:  # the rest is imported when a sweep runs: `clocklab check` builds this parser
    from rich.console import Console

    from orchestrator.backend_choice import Backends
    from orchestrator.events import Reporter
    from orchestrator.experiment import Experiment
    from orchestrator.plan import TrialPlan
    from orchestrator.sweep import Failure, SweepOutcome
    from vm_node.rundir import RunDir

DEFAULT_CONCURRENCY = 4
SHOWN_FAILURES = 10  # failed trials named on the console; trials.csv has them all
SWEEP_PORT = 21000  # local VMs of slot s listen from SWEEP_PORT + s * PORT_STRIDE
PORT_STRIDE = 256


def add_options(parser: argparse.ArgumentParser) -> None:
    tolerance = fidelity.RATE_TOLERANCE
    parser.add_argument("experiment", metavar="EXPERIMENT_OR_FILE", help="name or YAML path")
    parser.add_argument("--out", type=Path, help="sweep directory (default: sweeps/<name>)")
    parser.add_argument("--trials", type=int, help="trials per cell (default: the file's)")
    parser.add_argument("--duration", type=float, help="simulated seconds per trial")
    parser.add_argument("--time-scale", type=float, help="run K times faster")
    parser.add_argument("--seed", type=int, help="seed for rates and VM choices")
    parser.add_argument("--concurrency", type=int, help=f"trials at once ({DEFAULT_CONCURRENCY})")
    parser.add_argument(
        "--backend", choices=("local", "docker", "sim"), default="local",
        help="where the trials run (%(default)s); sim runs them in virtual time, one after "
        "another, and checks each",
    )  # fmt: skip
    parser.add_argument(
        "--jitter", type=float, metavar="SECONDS",
        help=f"spread of tick times the guard assumes ({fidelity.TICK_JITTER:g}, as measured "
        "here; the probe measures it again)",
    )  # fmt: skip
    parser.add_argument(
        "--rate-tolerance", type=float, default=tolerance, metavar="FRACTION",
        help=f"largest |achieved/configured - 1| a VM may show ({tolerance:g})",
    )  # fmt: skip
    probing = parser.add_mutually_exclusive_group()
    probing.add_argument(
        "--probe", action="store_true",
        help="run the fidelity probe again (else a sweep directory's probe serves every run)",
    )  # fmt: skip
    probing.add_argument("--no-probe", action="store_true", help="skip the fidelity probe")
    parser.add_argument(
        "--probe-only", action="store_true",
        help="run the fidelity probe, say what it found and stop (exit 2 if a VM strays)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="run even where fidelity fails")


def run(args: argparse.Namespace, backends: Backends | None = None) -> int:
    """The sweep; on `backends` where given (tests), else on the one --backend chooses."""
    from orchestrator.commands import console
    from orchestrator.display import LiveDisplay

    with LiveDisplay(console) as display:
        return _sweep(args, display, backends)


def _cells(args: argparse.Namespace) -> tuple[Experiment, list[Experiment], int]:
    """The base experiment, its cells with the command line's overrides, the concurrency."""
    from msgspec.structs import replace

    from orchestrator.sweep_spec import load_sweep

    base, spec = load_sweep(args.experiment)
    base = base.with_overrides(
        duration=args.duration, time_scale=args.time_scale, seed=args.seed, realtime=args.realtime
    )
    if args.trials is not None:
        if args.trials < 1:
            raise ConfigError("trials", f"must be >= 1, got {args.trials}")
        spec = replace(spec, trials=args.trials)
    concurrency = args.concurrency or spec.concurrency or DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be >= 1, got {concurrency}")
    if args.jitter is not None and not args.jitter >= 0:
        raise ConfigError("jitter", f"must be >= 0 seconds, got {args.jitter}")
    return base, spec.cells(base), concurrency


def _sweep(args: argparse.Namespace, report: Reporter, chosen: Backends | None) -> int:
    from analysis.errors import NoRunsError
    from analysis.report.sweep_table import write_results
    from orchestrator.backend_choice import backend_factory, trial_of
    from orchestrator.backends.local import LocalBackend
    from orchestrator.backends.sim import Simulated
    from orchestrator.commands import console, needs
    from orchestrator.plan import plan_trial
    from orchestrator.sweep import (
        jobs_of,
        kept_probe,
        probe,
        rate_errors,
        run_trials,
        trials_dir,
        unfinished,
        write_summary,
        write_trial_table,
    )

    base, cells, concurrency = _cells(args)
    if chosen is None and args.backend != "local":
        chosen = backend_factory(args.backend, args.context, report, needs(*cells))
    simulated = isinstance(chosen, Simulated)
    if simulated:  # virtual time waits for nothing: trials at once would only share the CPU
        concurrency = 1
    sweep_dir: Path = args.out or Path("sweeps") / base.name
    console.print(
        f"[bold]sweep {base.name}[/]: {len(cells)} cells × {cells[0].trials} trials, "
        f"{base.duration:g} s at time scale {base.time_scale:g}, {concurrency} at once "
        f"on {args.backend} → {sweep_dir}",
        highlight=False,
    )
    jitter = fidelity.TICK_JITTER if args.jitter is None else args.jitter
    tolerance, source = args.rate_tolerance, "measured here" if args.jitter is None else "given"
    if not simulated:  # in virtual time every tick keeps its deadline
        console.print(fidelity.guard(cells, jitter, tolerance, args.force, source), highlight=False)
    sweep_dir.mkdir(parents=True, exist_ok=True)

    def backend_for(slot: int) -> Backends:
        if chosen is not None:
            return chosen

        def local(plan: TrialPlan, run_dir: RunDir) -> LocalBackend:
            # each slot its own block of ports, so trials at once never collide
            return LocalBackend(plan, run_dir, base_port=SWEEP_PORT + slot * PORT_STRIDE)

        return local

    for cell in cells:  # a bad schedule is refused before any trial starts
        trial_of(plan_trial(cell, 1), backend_for(0), trials_dir(sweep_dir)).check_schedule()
    probed: dict[str, Any] = {}
    probe_dir = sweep_dir / "probe"
    rows = [] if args.probe or args.probe_only else kept_probe(probe_dir)
    if rows:
        console.print(f"fidelity probe: kept in {probe_dir} (--probe measures again)")
    elif args.probe_only or (
        not simulated and not args.no_probe and unfinished(jobs_of(cells), sweep_dir)
    ):
        rows = probe(cells, concurrency, backend_for, probe_dir, report)
    if rows:
        console.print(fidelity.judge_probe(cells, rows, tolerance, args.force), highlight=False)
        jitters = [r.tick_jitter for r in rows if math.isfinite(r.tick_jitter)]
        probed = {
            "cell": rows[0].cell if rows else None,
            "rate_errors": [abs(r.rate_error) for r in rows],
            "tick_jitter": statistics.median(jitters) if jitters else None,
        }
        if args.probe_only:
            return EXIT_OK
    started = time.monotonic()
    outcome = run_trials(cells, sweep_dir, concurrency, backend_for, report)
    table = write_trial_table(sweep_dir, jobs_of(cells), outcome.failed)
    try:
        scores = write_results(trials_dir(sweep_dir), sweep_dir, outcome.rows)
    except NoRunsError:  # not one trial wrote a log
        console.print(f"[red]no trial of the sweep ran: see {table}[/]", highlight=False)
        return EXIT_FAILED
    errors = rate_errors(sweep_dir)
    summary = {
        "experiment": base.name,
        "cells": [c.name for c in cells],
        "trials_per_cell": cells[0].trials,
        "duration": base.duration,
        "time_scale": base.time_scale,
        "concurrency": concurrency,
        "backend": args.backend,
        "ran": outcome.ran,
        "skipped": outcome.skipped,
        "failed": [_failed(f, args) for f in outcome.failed],
        "trial_seconds": outcome.seconds,
        "total_seconds": time.monotonic() - started,
        "vm_rate_errors": len(errors),
        "worst_rate_error": max(errors, default=0.0),
        "vms_beyond_tolerance": sum(e > tolerance for e in errors),
        "rate_tolerance": tolerance,
        "guard_jitter": jitter,
        "model": scores.to_dict(),
        "probe": probed,
    }
    write_summary(sweep_dir, summary)
    _print_summary(summary, outcome, table, console, args)
    print(sweep_dir)
    return EXIT_FAILED if outcome.failed else EXIT_OK


def reproduce(failure: Failure, args: argparse.Namespace) -> str:
    """The command that runs a trial whose check failed again, writing the same logs."""
    words = ["clocklab up --backend sim", f"--experiment {args.experiment}"]
    words += [f"--cell {failure.cell}", f"--trial {failure.trial}", f"--seed {failure.seed}"]
    if args.duration is not None:
        words.append(f"--duration {args.duration:g}")
    if args.time_scale is not None:
        words.append(f"--time-scale {args.time_scale:g}")
    return " ".join(words)


def _failed(failure: Failure, args: argparse.Namespace) -> dict[str, Any]:
    data = failure.to_dict()
    if failure.seed is not None:
        data["reproduce"] = reproduce(failure, args)
    return data


def _print_summary(
    s: dict[str, Any],
    outcome: SweepOutcome,
    table: Path,
    console: Console,
    args: argparse.Namespace,
) -> None:
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done, {len(outcome.failed)} failed, "
        f"in {outcome.seconds:.1f} s (with analysis {s['total_seconds']:.1f} s)"
    )
    for failure in outcome.failed[:SHOWN_FAILURES]:
        console.print(f"[red]failed:[/] {failure}", highlight=False)
        if failure.seed is not None:
            console.print(f"  reproduce: {reproduce(failure, args)}", highlight=False)
    if outcome.failed:
        more = len(outcome.failed) - SHOWN_FAILURES
        also = f"{more} more, and " if more > 0 else ""
        console.print(
            f"{also}every trial's outcome in {table}; running the sweep again retries "
            "only the failed trials",
            highlight=False,
        )
    tone = "red" if s["vms_beyond_tolerance"] else "green"
    console.print(
        f"[{tone}]worst VM rate error {s['worst_rate_error']:.5%} over {s['vm_rate_errors']} "
        f"VMs; {s['vms_beyond_tolerance']} beyond {s['rate_tolerance']:.4%}[/]"
    )
    m = s["model"]
    console.print(
        f"model: mean |predicted - measured receive share| {m['share_error']:.4f} over "
        f"{m['vm_trials']} VM-trials; queue growth right on {m['clear_right']} of "
        f"{m['clear']} with |λ/μ - 1| >= 0.1 ({m['all_right']} of {m['vm_trials']} over all)"
    )
