"""`clocklab`: run trials and analyse them. Exit codes: 0 ok, 1 failed, 2 bad usage or config."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from rich.console import Console

from orchestrator.backends import Backend
from orchestrator.cluster.cli import add_commands as add_cluster_commands
from orchestrator.display import LiveDisplay, summary_table
from orchestrator.errors import BackendUnavailable, ClocklabError, ConfigError, Interrupted
from orchestrator.experiment import Experiment, load_experiment
from orchestrator.plan import plan_trial
from orchestrator.rundir import DEFAULT_OUT
from orchestrator.trial import Trial, TrialResult

BACKENDS = ("docker", "local", "swarm")
console = Console(stderr=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_trial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default="original", help="name or YAML path")
    parser.add_argument("--duration", type=_positive_float, help="simulated seconds")
    parser.add_argument("--time-scale", type=_positive_float, help="run K times faster")
    parser.add_argument("--vms", type=_positive_int, help="number of VMs")
    parser.add_argument("--seed", type=int, help="seed for rates and VM choices")
    parser.add_argument("--backend", choices=BACKENDS, help="default: docker if it answers")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="runs root (./runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clocklab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run one trial; prints its run directory")
    up.add_argument("--trial", type=_positive_int, default=1)
    _add_trial_options(up)
    up.set_defaults(func=cmd_up)

    trials = commands.add_parser("trials", help="run every trial of an experiment")
    _add_trial_options(trials)
    trials.add_argument("--trials", type=_positive_int, help="how many (default: the file's)")
    trials.set_defaults(func=cmd_trials)

    down = commands.add_parser("down", help="remove what crashed trials left behind")
    down.set_defaults(func=cmd_down)

    image = commands.add_parser("image", help="build the VM container image")
    image.add_argument("--rebuild", action="store_true", help="build even if present")
    image.set_defaults(func=cmd_image)

    add_cluster_commands(commands)

    try:
        from analysis.cli import add_commands
    except ImportError:  # analysis not installed: trials still run
        pass
    else:
        add_commands(commands)
    return parser


def load_with_overrides(args: argparse.Namespace) -> Experiment:
    experiment, _ = load_experiment(args.experiment)
    return experiment.with_overrides(
        duration=args.duration,
        time_scale=args.time_scale,
        vms=args.vms,
        seed=args.seed,
        trials=getattr(args, "trials", None),
        # listed rates cannot follow a new VM count: draw from their range instead
        **_rates_for_vms(experiment, args.vms),
    )


def _rates_for_vms(experiment: Experiment, vms: int | None) -> dict[str, object]:
    if vms is None or experiment.rates is None or len(experiment.rates) == vms:
        return {}
    raise ConfigError(
        "vms", f"{experiment.name} lists {len(experiment.rates)} rates; cannot use --vms {vms}"
    )


def make_backend(name: str | None) -> Backend:
    """The named backend; by default docker where an engine answers, else local."""
    from orchestrator.backends.local import LocalBackend

    if name == "local":
        return LocalBackend()
    if name == "swarm":
        from orchestrator.backends.swarm import SwarmBackend

        return SwarmBackend()
    from orchestrator.backends.compose import ComposeBackend

    try:
        return ComposeBackend()
    except BackendUnavailable as e:
        if name is not None:
            raise
        first_line = str(e).splitlines()[0]
        console.print(f"[yellow]{first_line}: running on the local backend instead[/]")
        return LocalBackend()


def run_one(
    experiment: Experiment, trial: int, backend: Backend, out: Path, display: LiveDisplay
) -> TrialResult:
    plan = plan_trial(experiment, trial)
    console.print(
        f"[bold]{experiment.name}[/] trial {trial} on {backend.name}: {plan.vms} VMs, "
        f"rates {', '.join(f'{r:g}' for r in plan.rates)}, {experiment.duration:g} s "
        f"at time scale {experiment.time_scale:g}"
    )
    result = Trial(plan, backend, out, display).run()
    console.print(summary_table(plan, result.progress))
    if not result.ok:
        console.print(f"[red]trial {result.outcome}:[/] {result.error}")
    print(result.run_dir.path)
    return result


def cmd_up(args: argparse.Namespace) -> int:
    experiment = load_with_overrides(args)
    backend = make_backend(args.backend)
    with LiveDisplay(console) as display:
        result = run_one(experiment, args.trial, backend, args.out, display)
    return 0 if result.ok else 1


def cmd_trials(args: argparse.Namespace) -> int:
    experiment = load_with_overrides(args)
    backend_name = args.backend
    failed = 0
    with LiveDisplay(console, trials=experiment.trials) as display:
        for trial in range(1, experiment.trials + 1):
            result = run_one(experiment, trial, make_backend(backend_name), args.out, display)
            failed += not result.ok
            if result.outcome == "interrupted":
                return 1
    console.print(f"{experiment.trials - failed} of {experiment.trials} trials completed")
    return 0 if failed == 0 else 1


def cmd_down(args: argparse.Namespace) -> int:
    from orchestrator.cleanup import remove_labelled

    removed = remove_labelled()
    console.print(f"removed {removed or 'nothing'}")
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    from orchestrator.image import build_image_command

    return build_image_command(args.rebuild)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # like Ctrl-C: tear down, keep the logs
        signal.signal(sig, _interrupt)
    try:
        code: int = args.func(args)
    except ClocklabError as e:
        console.print(f"[red]clocklab {args.command}:[/] {e}")
        return e.exit_code
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
