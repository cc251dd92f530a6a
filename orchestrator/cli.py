"""`clocklab`: run trials and analyse them."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from analysis.cli import add_commands
from orchestrator import fidelity, sweep_command
from orchestrator.backends import BACKENDS
from orchestrator.cluster.cli import add_commands as add_cluster_commands
from orchestrator.errors import EXIT_FAILED, ClocklabError, Interrupted, UnexpectedError
from orchestrator.tracebacks import write_file

if TYPE_CHECKING:
    from rich.console import Console

EXIT_CODES = """\
exit codes:
  0  success: the trial completed, the verdict is valid
  1  a trial failed, or the verdict is invalid
  2  bad usage or configuration (nothing was started)
  3  the verdict is unknown (incomplete logs)
"""
DEFAULT_OUT = Path("runs")


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


def _fraction(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a fraction >= 0, got {text}")
    return value


def _add_context(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--context",
        metavar="NAME",
        help="Docker context to use (default: as the docker CLI chooses: "
        "DOCKER_HOST, DOCKER_CONTEXT, the current context)",
    )


def _add_realtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--realtime",
        action="store_true",
        default=None,
        help="VMs tick at real-time priority, so other work cannot delay them (needs root "
        "or CAP_SYS_NICE; containers need the engine's real-time budget)",
    )


def _add_trial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", default="original", help="name or YAML path")
    parser.add_argument("--duration", type=_positive_float, help="simulated seconds")
    parser.add_argument("--time-scale", type=_positive_float, help="run K times faster")
    parser.add_argument("--vms", type=_positive_int, help="number of VMs")
    parser.add_argument("--seed", type=int, help="seed for rates and VM choices")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="default: docker if it answers, else local with a warning; sim runs the VMs "
        "in virtual time, deterministically from the seed",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="runs root (default %(default)s)"
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="VMs accept unsigned frames (default: a fresh key per trial, on every backend)",
    )
    parser.add_argument(
        "--rate-tolerance", type=_fraction, default=fidelity.RATE_TOLERANCE, metavar="FRACTION",
        help="largest |achieved/configured - 1| a VM may show before clocklab warns "
        f"({fidelity.RATE_TOLERANCE:g})",
    )  # fmt: skip
    parser.add_argument(
        "--mtu",
        type=_positive_int,
        metavar="BYTES",
        help="MTU of the trial's lab network (default: the engine's): under swarm the hosts' "
        "own (the overlay takes 50 bytes off it), under docker the bridge's; see docs/hosts.md",
    )
    _add_realtime(parser)
    _add_context(parser)


def _later(name: str, module: str = "orchestrator.commands") -> Callable[[argparse.Namespace], int]:
    """A command's function, imported when that command runs: `clocklab check` then starts
    without the backends, the image builder or the trial machinery."""

    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), name
        )
        return command(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clocklab",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an unexpected error (by default it goes to a file)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = subparsers.add_parser("up", help="run one trial; prints its run directory")
    up.add_argument("--trial", type=_positive_int, default=1)
    up.add_argument(
        "--cell", metavar="NAME",
        help="run this cell of the experiment file's sweep grid, as `clocklab sweep` names it",
    )  # fmt: skip
    _add_trial_options(up)
    up.set_defaults(func=_later("up"))

    trials = subparsers.add_parser("trials", help="run every trial of an experiment")
    _add_trial_options(trials)
    trials.add_argument("--trials", type=_positive_int, help="how many (default: the file's)")
    trials.set_defaults(func=_later("trials"))

    down = subparsers.add_parser(
        "down", help="remove the containers, services and networks trials left behind"
    )
    scope = down.add_mutually_exclusive_group(required=True)
    scope.add_argument("--run", metavar="ID", help="what the run with this id left")
    scope.add_argument("--session", metavar="ID", help="what this clocklab session left")
    scope.add_argument("--all", action="store_true", help="everything labelled clocklab.run")
    _add_context(down)
    down.set_defaults(func=_later("down"))

    sweep = subparsers.add_parser(
        "sweep", help="run a grid of experiments (a file's sweep: section), several at once"
    )
    sweep_command.add_options(sweep)
    _add_realtime(sweep)
    _add_context(sweep)
    sweep.set_defaults(func=sweep_command.run)

    image = subparsers.add_parser("image", help="build the VM container image")
    image.add_argument("--rebuild", action="store_true", help="build even if present")
    _add_context(image)
    image.set_defaults(func=_later("image"))

    add_cluster_commands(subparsers)
    add_commands(subparsers)
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def _console() -> Console:
    from orchestrator.commands import console

    return console


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # like Ctrl-C: tear down, keep the logs
        signal.signal(sig, _interrupt)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        _console().print("[red]interrupted[/]")
        return EXIT_FAILED
    except Exception as e:
        return _report(e, args)
    return code


def _report(error: Exception, args: argparse.Namespace) -> int:
    """One line for the user. A bug's traceback goes to a file that the line names, or with
    --debug to stderr: whoever reports the bug has it either way."""
    bug = error.error if isinstance(error, UnexpectedError) else error
    if args.debug and not isinstance(bug, ClocklabError):
        traceback.print_exception(bug)
        return EXIT_FAILED
    if not isinstance(error, ClocklabError):
        error = UnexpectedError(error, write_file(error, args.command))
    _console().print(f"[red]clocklab {args.command}:[/] {error}", highlight=False, soft_wrap=True)
    return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
