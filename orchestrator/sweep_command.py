"""The `clocklab sweep` command: options, the guard, the trials, the results, the summary."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from orchestrator.backends import Backend
from orchestrator.commands import backend_factory, console
from orchestrator.display import LiveDisplay
from orchestrator.errors import EXIT_FAILED, EXIT_OK, ConfigError
from orchestrator.events import Reporter

DEFAULT_CONCURRENCY = 4
SWEEP_PORT = 21000  # local VMs of slot s listen from SWEEP_PORT + s * PORT_STRIDE
PORT_STRIDE = 256


def add_options(parser: argparse.ArgumentParser) -> None:
    from orchestrator.sweep import RATE_TOLERANCE, TICK_BUDGET

    parser.add_argument("experiment", metavar="EXPERIMENT_OR_FILE", help="name or YAML path")
    parser.add_argument("--out", type=Path, help="sweep directory (default: sweeps/<name>)")
    parser.add_argument("--trials", type=int, help="trials per cell (default: the file's)")
    parser.add_argument("--duration", type=float, help="simulated seconds per trial")
    parser.add_argument("--time-scale", type=float, help="run K times faster")
    parser.add_argument("--seed", type=int, help="seed for rates and VM choices")
    parser.add_argument("--concurrency", type=int, help=f"trials at once ({DEFAULT_CONCURRENCY})")
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument(
        "--tick-budget", type=float, default=TICK_BUDGET, metavar="TICKS_PER_S",
        help=f"real ticks per second the machine sustains within 0.01 %% ({TICK_BUDGET:g})",
    )  # fmt: skip
    parser.add_argument(
        "--rate-tolerance", type=float, default=RATE_TOLERANCE, metavar="FRACTION",
        help=f"largest |achieved/configured - 1| the probe accepts ({RATE_TOLERANCE:g})",
    )  # fmt: skip
    parser.add_argument("--no-probe", action="store_true", help="skip the fidelity probe")
    parser.add_argument(
        "--probe-only", action="store_true",
        help="run the fidelity probe, say what it found and stop (exit 2 if a VM strays)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="run even where fidelity fails")


def run(args: argparse.Namespace) -> int:
    with LiveDisplay(console) as display:
        return _sweep(args, display)


def _sweep(args: argparse.Namespace, report: Reporter) -> int:
    from analysis.report.sweep_table import write_results
    from orchestrator.backends.local import LocalBackend
    from orchestrator.sweep import (
        guard_fidelity,
        jobs_of,
        judge_probe,
        probe_fidelity,
        rate_errors,
        run_trials,
        trials_dir,
        unfinished,
        write_summary,
    )
    from orchestrator.sweep_spec import load_sweep

    base, spec = load_sweep(args.experiment)
    base = base.with_overrides(duration=args.duration, time_scale=args.time_scale, seed=args.seed)
    if args.trials is not None:
        if args.trials < 1:
            raise ConfigError("trials", f"must be >= 1, got {args.trials}")
        spec = dataclasses.replace(spec, trials=args.trials)
    concurrency = args.concurrency or spec.concurrency or DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be >= 1, got {concurrency}")
    cells = spec.cells(base)
    sweep_dir: Path = args.out or Path("sweeps") / base.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    console.print(
        f"[bold]sweep {base.name}[/]: {len(cells)} cells × {cells[0].trials} trials, "
        f"{base.duration:g} s at time scale {base.time_scale:g}, {concurrency} at once "
        f"on {args.backend} → {sweep_dir}"
    )
    console.print(guard_fidelity(cells, concurrency, args.tick_budget, args.force))

    make = None if args.backend == "local" else backend_factory(args.backend, args.context, report)

    def backend_for(slot: int) -> Backend:
        if make is None:  # each slot its own block of ports, so trials at once never collide
            return LocalBackend(base_port=SWEEP_PORT + slot * PORT_STRIDE)
        return make()

    probe: dict[str, object] = {}
    if args.probe_only or (not args.no_probe and unfinished(jobs_of(cells), sweep_dir)):
        cell, errors = probe_fidelity(cells, concurrency, backend_for, sweep_dir / "probe", report)
        console.print(judge_probe(cell, concurrency, errors, args.rate_tolerance, args.force))
        probe = {"cell": cell.name, "rate_errors": errors}
        if args.probe_only:
            return EXIT_OK
    started = time.monotonic()
    outcome = run_trials(cells, sweep_dir, concurrency, backend_for, report)
    scores = write_results(trials_dir(sweep_dir), sweep_dir)
    errors = rate_errors(sweep_dir)
    worst = max(errors, default=0.0)
    beyond = sum(e > args.rate_tolerance for e in errors)
    total = time.monotonic() - started
    write_summary(
        sweep_dir,
        {
            "experiment": base.name,
            "cells": [c.name for c in cells],
            "trials_per_cell": cells[0].trials,
            "duration": base.duration,
            "time_scale": base.time_scale,
            "concurrency": concurrency,
            "backend": args.backend,
            "ran": outcome.ran,
            "skipped": outcome.skipped,
            "failed": list(outcome.failed),
            "trial_seconds": outcome.seconds,
            "total_seconds": total,
            "vm_rate_errors": len(errors),
            "worst_rate_error": worst,
            "vms_beyond_tolerance": beyond,
            "model": scores.to_dict(),
            "probe": probe,
        },
    )
    console.print(
        f"{outcome.ran} trials run, {outcome.skipped} already done, {len(outcome.failed)} failed, "
        f"in {outcome.seconds:.1f} s (with analysis {total:.1f} s)"
    )
    for failure in outcome.failed[:5]:
        console.print(f"[red]failed:[/] {failure}")
    tone = "red" if beyond else "green"
    console.print(
        f"[{tone}]worst VM rate error {worst:.5%} over {len(errors)} VMs; "
        f"{beyond} beyond {args.rate_tolerance:.2%}[/]"
    )
    console.print(
        f"model: mean |predicted - measured receive share| {scores.share_error:.4f} over "
        f"{scores.vm_trials} VM-trials; queue growth right on {scores.clear_right} of "
        f"{scores.clear} with |λ/μ - 1| >= 0.1 ({scores.all_right} of {scores.vm_trials} over all)"
    )
    print(sweep_dir)
    return EXIT_FAILED if outcome.failed else EXIT_OK
