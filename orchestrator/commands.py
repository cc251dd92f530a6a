"""What each orchestrator command does; cli.py parses, these run.

Every trial of `trials` gets a fresh backend from one factory (backend_choice.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from orchestrator.backend_choice import Backends, backend_factory, trial_of
from orchestrator.display import LiveDisplay, summary_table
from orchestrator.engine import LABEL_RUN, LABEL_SESSION, connect_from_env, remove_labelled
from orchestrator.errors import EXIT_FAILED, EXIT_OK, ConfigError
from orchestrator.experiment import Experiment, load_experiment
from orchestrator.fidelity import RATE_TOLERANCE, RateFidelity, recorded_fidelity
from orchestrator.image import IMAGE, ensure_image
from orchestrator.plan import plan_trial
from orchestrator.trial import TrialResult
from vm_node.rundir import Outcome

console = Console(stderr=True)


def load_with_overrides(args: argparse.Namespace) -> Experiment:
    experiment = load_cell(args.experiment, args.cell) if getattr(args, "cell", None) else None
    if experiment is None:
        experiment, _ = load_experiment(args.experiment)
    if args.vms is not None and experiment.rates is not None and len(experiment.rates) != args.vms:
        # listed rates cannot follow a new VM count
        raise ConfigError(
            "vms",
            f"{experiment.name} lists {len(experiment.rates)} rates; cannot use --vms {args.vms}",
        )
    return experiment.with_overrides(
        duration=args.duration,
        time_scale=args.time_scale,
        vms=args.vms,
        seed=args.seed,
        trials=getattr(args, "trials", None),
        auth=False if args.no_auth else None,
        realtime=args.realtime,
        mtu=args.mtu,
    )


def load_cell(name_or_path: str, cell: str) -> Experiment:
    """One cell of an experiment file's sweep grid, by the name a sweep gives it."""
    from orchestrator.sweep_spec import load_sweep

    base, spec = load_sweep(name_or_path)
    cells = {c.name: c for c in spec.cells(base)}
    if cell not in cells:
        known = ", ".join(list(cells)[:5]) + (", ..." if len(cells) > 5 else "")
        raise ConfigError("cell", f"{base.name} has no sweep cell {cell!r} (its cells: {known})")
    return cells[cell]


def run_one(
    experiment: Experiment,
    trial: int,
    backends: Backends,
    out: Path,
    display: LiveDisplay,
    rate_tolerance: float = RATE_TOLERANCE,
) -> TrialResult:
    plan = plan_trial(experiment, trial)
    run = trial_of(plan, backends, out, display, rate_tolerance)
    console.print(
        f"[bold]{experiment.name}[/] trial {trial} on {run.backend_name}: {plan.vms} VMs, "
        f"rates {', '.join(f'{r:g}' for r in plan.rates)}, {experiment.duration:g} s "
        f"at time scale {experiment.time_scale:g}"
    )
    result = run.run()
    console.print(summary_table(plan, result.progress))
    if not result.ok:
        console.print(f"[red]trial {result.outcome}:[/] {result.error}", highlight=False)
    if (lost := lost_fidelity(result)) is not None:
        warning = lost.warning(plan.vms, experiment.time_scale)
        console.print(f"[yellow]{warning}[/]", highlight=False)
    print(result.run_dir.path)
    return result


def needs(*experiments: Experiment) -> set[str]:
    """The fault kinds the experiments' schedules name."""
    return {fault.kind for e in experiments for fault in e.faults}


def lost_fidelity(result: TrialResult) -> RateFidelity | None:
    """The trial's recorded fidelity, where its worst VM strayed beyond the tolerance."""
    fidelity = recorded_fidelity(result.manifest.fidelity)
    return fidelity if fidelity is not None and not fidelity.held else None


def up(args: argparse.Namespace, backends: Backends | None = None) -> int:
    """One trial; on `backends` where given (tests), else on the one --backend chooses."""
    experiment = load_with_overrides(args)
    with LiveDisplay(console) as display:
        if backends is None:
            backends = backend_factory(args.backend, args.context, display, needs(experiment))
        result = run_one(experiment, args.trial, backends, args.out, display, args.rate_tolerance)
    return EXIT_OK if result.ok else EXIT_FAILED


def trials(args: argparse.Namespace) -> int:
    experiment = load_with_overrides(args)
    failed = strayed = 0
    with LiveDisplay(console, trials=experiment.trials) as display:
        make = backend_factory(args.backend, args.context, display, needs(experiment))
        for trial in range(1, experiment.trials + 1):
            result = run_one(experiment, trial, make, args.out, display, args.rate_tolerance)
            failed += not result.ok
            strayed += lost_fidelity(result) is not None
            if result.outcome is Outcome.INTERRUPTED:
                return EXIT_FAILED
    console.print(f"{experiment.trials - failed} of {experiment.trials} trials completed")
    if strayed:
        console.print(
            f"[yellow]{strayed} of {experiment.trials} trials lost fidelity: a VM strayed "
            f"beyond {args.rate_tolerance:.4%} of its rate[/]",
            highlight=False,
        )
    return EXIT_OK if failed == 0 else EXIT_FAILED


def down(args: argparse.Namespace) -> int:
    if args.all:
        label, what = LABEL_RUN, "every clocklab run"
    elif args.session:
        label, what = f"{LABEL_SESSION}={args.session}", f"session {args.session}"
    else:
        label, what = f"{LABEL_RUN}={args.run}", f"run {args.run}"
    engine = connect_from_env(args.context)
    removed = remove_labelled(engine.client, label)
    console.print(f"removing what {what} left on {engine.endpoint.host}:", highlight=False)
    for name in removed:
        console.print(f"  removed {name}", highlight=False)
    if not removed:
        console.print("  nothing to remove")
    return EXIT_OK


def image(args: argparse.Namespace) -> int:
    """Build (or find) the image and print it."""
    started = time.monotonic()
    client = connect_from_env(args.context).client
    image_id = ensure_image(
        client, rebuild=args.rebuild, progress=lambda line: console.print(f"  {line}")
    )
    size = client.images.get(image_id).attrs["Size"]
    took = time.monotonic() - started
    print(f"{IMAGE} {image_id.removeprefix('sha256:')[:12]} {size / 1e6:.0f} MB ({took:.1f} s)")
    return EXIT_OK
