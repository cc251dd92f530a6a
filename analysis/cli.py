"""The analysis subcommands of `clocklab`: analyze, check, report, export.

`orchestrator.cli` calls `add_commands(subparsers)`; each command's `func`
takes the parsed arguments and returns the exit code (EXIT_CODES below).
Heavy imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from analysis.errors import AnalysisError

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  valid (check) or done (analyze, report, compare, export)
  1  invalid: some line breaks a clock rule or a message is unaccounted for
  2  bad usage or config, or a path that holds no run
  3  verdict unknown: logs incomplete, or the trial did not complete"""
_VERDICT_EXIT = {"valid": EXIT_OK, "invalid": EXIT_INVALID, "unknown": EXIT_UNKNOWN}
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    analyze = _command(subparsers, "analyze", "print metrics per VM, trial and experiment")
    _runs(analyze)
    _skew(analyze)
    analyze.add_argument("--json", action="store_true", help="machine-readable output")
    analyze.add_argument(
        "--clocks",
        type=_clock_names,
        default=(),
        metavar="NAMES",
        help="also run these clocks on each trial, comma-separated: lamport, vector, hlc, bloom "
        "(docs/clocks.md)",
    )
    analyze.set_defaults(func=cmd_analyze)

    check = _command(
        subparsers, "check", "verdict on the clocks: exit 0 valid, 1 invalid, 3 unknown"
    )
    _runs(check)
    _skew(check)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_check)

    report = _command(subparsers, "report", "write a self-contained HTML report")
    _runs(report)
    _skew(report)
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        help="where to write it (default %(default)s)",
    )
    report.add_argument(
        "--figures", type=Path, metavar="DIR",
        help="also save every figure as a PNG in DIR (for a README, a paper, a slide)",
    )  # fmt: skip
    report.set_defaults(func=cmd_report)

    compare = _command(
        subparsers,
        "compare",
        "real trials beside simulated ones on the same seeds: where the network shows",
    )
    compare.add_argument(
        "real",
        type=Path,
        metavar="REAL_RUNS",
        help="trials run on a real backend (a runs root, an experiment or a trial)",
    )
    compare.add_argument(
        "sim",
        type=Path,
        metavar="SIM_RUNS",
        help="the same experiment and seeds run on the simulator",
    )
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    compare.set_defaults(func=cmd_compare)

    export = _command(subparsers, "export", "export a trial's logs for other tools")
    export.add_argument("--shiviz", action="store_true", required=True, help="ShiViz's log format")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="one trial directory")
    export.add_argument("-o", "--output", type=Path, help="write here (default: standard output)")
    export.set_defaults(func=cmd_export)


def _command(
    subparsers: argparse._SubParsersAction[Any], name: str, summary: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _runs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dirs",
        type=Path,
        nargs="+",
        metavar="RUN_DIR",
        help="a runs root, an experiment directory or a trial directory",
    )


def _skew(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skew",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how far any two VMs' wall clocks may disagree (default: each pair's offset, "
        "from its configured skew on one host, else from the messages between them)",
    )


def _clock_names(text: str) -> tuple[str, ...]:
    from analysis.clocks import CLOCKS

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CLOCKS]
    if unknown or not names:
        problem = f"unknown clock {unknown[0]!r}" if unknown else "no clock named"
        raise argparse.ArgumentTypeError(f"{problem}; choose from {','.join(CLOCKS)}")
    return names


def cmd_analyze(args: argparse.Namespace) -> int:
    from rich.console import Console

    from analysis.clocks.claims import judge_clocks
    from analysis.console import print_clocks, print_experiments, print_trial
    from analysis.metrics.claims import judge
    from analysis.metrics.summaries import summarize_all
    from analysis.report.analyses import analyze

    def run() -> int:
        clocks = args.clocks
        analyses = list(
            analyze(args.run_dirs, skew=args.skew, clocks=clocks, clock_claims=bool(clocks))
        )
        summaries = summarize_all(a.metrics for a in analyses)
        claims = judge(summaries)
        if clocks:
            claims += judge_clocks([a.clock_trial for a in analyses if a.clock_trial])
        if args.json:
            document = {
                "trials": [
                    a.metrics.to_dict()
                    | {"check": a.check.to_dict()}
                    | ({"clocks": {n: f.columns for n, f in a.clocks.items()}} if a.clocks else {})
                    for a in analyses
                ],
                "experiments": [s.to_dict() for s in summaries],
                "claims": [
                    {
                        "statement": c.statement,
                        "scope": c.scope,
                        "support": c.support.value,
                        "evidence": c.evidence,
                    }
                    for c in claims
                ],
            }
            sys.stdout.buffer.write(orjson.dumps(document, option=_JSON_OPTIONS) + b"\n")
            return EXIT_OK
        console = Console()
        if not console.is_terminal:  # piped: wide enough for the tables
            console = Console(width=120)
        for a in analyses:
            print_trial(console, a.metrics, a.check)
            if a.clocks:
                print_clocks(console, a.metrics.name, a.clocks)
        print_experiments(console, summaries, claims)
        return EXIT_OK

    return _guarded(run)


def cmd_check(args: argparse.Namespace) -> int:
    from analysis.check.clocks import check_trial
    from analysis.check.verdict import Verdict
    from analysis.console import print_checks
    from analysis.load.runs import load_trials

    def run() -> int:
        results = [check_trial(trial, skew=args.skew) for trial in load_trials(args.run_dirs)]
        if args.json:
            verdict = Verdict.worst([r.verdict for r in results])
            document = {"verdict": verdict.value, "trials": [r.to_dict() for r in results]}
            sys.stdout.buffer.write(orjson.dumps(document, option=_JSON_OPTIONS) + b"\n")
        else:
            verdict = print_checks(sys.stdout, results)
        return _VERDICT_EXIT[verdict.value]

    return _guarded(run)


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report.markup import Gallery
    from analysis.report.page import write_report

    def run() -> int:
        gallery = Gallery(args.figures)
        analyses = write_report(args.run_dirs, args.output, skew=args.skew, gallery=gallery)
        what = f"{len(analyses)} trial(s)" if analyses else "a sweep"  # a sweep page has none
        print(f"report on {what}: {args.output.resolve()}")
        if gallery.saved:
            print(f"{len(gallery.saved)} figures in {args.figures.resolve()}")
        return EXIT_OK

    return _guarded(run)


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from analysis.console import print_realism
    from analysis.load.runs import load_trials
    from analysis.metrics.realism import compare
    from analysis.metrics.traces import traces
    from analysis.metrics.trial import TrialMetrics, trial_metrics

    def measured(path: Path) -> list[TrialMetrics]:
        return [trial_metrics(trial, traces(trial)) for trial in load_trials([path])]

    def run() -> int:
        realism = compare(measured(args.real), measured(args.sim), (str(args.real), str(args.sim)))
        if args.json:
            claim = realism.claim()
            document = {
                "figures": [
                    {
                        "figure": f.name,
                        "real": f.real,
                        "sim": f.sim,
                        "test": f.method,
                        "statistic": f.statistic,
                        "p": f.test.p,
                        "differs": f.differs,
                    }
                    for f in realism.figures
                ],
                "network_shows": realism.network_shows,
                "paired_trials": realism.paired_trials,
                "claim": {
                    "statement": claim.statement,
                    "scope": claim.scope,
                    "support": claim.support.value,
                    "evidence": claim.evidence,
                },
            }
            sys.stdout.buffer.write(orjson.dumps(document, option=_JSON_OPTIONS) + b"\n")
            return EXIT_OK
        console = Console()
        if not console.is_terminal:  # piped: wide enough for the table
            console = Console(width=120)
        print_realism(console, realism)
        return EXIT_OK

    return _guarded(run)


def cmd_export(args: argparse.Namespace) -> int:
    from analysis.load.runs import load_trial
    from analysis.report.shiviz import export, write_shiviz

    def run() -> int:
        trial = load_trial(args.run_dir)
        if args.output is None:
            export(trial, sys.stdout)
            return EXIT_OK
        events = write_shiviz(trial, args.output)
        print(f"{events} events for ShiViz: {args.output.resolve()}")
        return EXIT_OK

    return _guarded(run)


def _guarded(run: Callable[[], int]) -> int:
    """Run a command; an analysis error is one line on stderr and exit code 2."""
    try:
        code = run()
    except AnalysisError as e:
        print(f"clocklab: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `clocklab analyze ... | head`
        return EXIT_OK
    return code
