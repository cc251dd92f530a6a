"""`python -m bench [--quick] [--only NAME...]`: run the benchmarks, print their tables.

Each benchmark prints its rows as a Markdown table and writes them to
bench/results/<name>.json (bench/results/quick/ with --quick); the combined
table of headline figures comes at the end. A full run (every benchmark, not
--quick, with Docker, none failed) also writes that table into
docs/performance.md, so the page always shows the last full measurement.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

from bench import (
    analysis_speed,
    clocks,
    cluster_scale,
    codec,
    cross_host,
    fidelity,
    footprint,
    join,
    latency,
    memory,
    offsets,
    overhead,
    partition,
    scale,
    sim,
    throughput,
)
from bench.containers import Docker, DockerUnavailable
from bench.context import Context
from bench.report import RESULTS, Section, combined_table, describe_machine, write_performance
from orchestrator.engine import SESSION_ENV

BENCHMARKS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        fidelity,
        throughput,
        footprint,
        codec,
        latency,
        cross_host,
        cluster_scale,
        partition,
        join,
        overhead,
        memory,
        analysis_speed,
        scale,
        offsets,
        sim,
        clocks,
    )
}
# The fleets of 50 VMs (overhead, memory) leave the machine busy for a while: they go last.
RUN_ORDER = (
    "fidelity",
    "throughput",
    "footprint",
    "codec",
    "latency",
    "cross_host",
    "cluster_scale",
    "partition",
    "join",
    "analysis",
    "sim",
    "clocks",
    "scale",
    "offsets",
    "overhead",
    "memory",
)
QUIET_IDLE = 0.85  # share of CPU time idle over a second before a benchmark starts
QUIET_WAIT = {False: 60.0, True: 5.0}  # seconds to wait for that at most


def wait_until_quiet(quick: bool) -> None:
    """Start each benchmark on an idle machine (what ran before may still be winding down)."""
    deadline = time.monotonic() + QUIET_WAIT[quick]
    while (idle := idle_share()) < QUIET_IDLE:
        if time.monotonic() > deadline:
            print(f"  (the machine is busy: {1 - idle:.0%} of CPU time; going ahead)")
            return


def idle_share(seconds: float = 1.0) -> float:
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, all

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def why_partial(args: argparse.Namespace, docker: Docker | None, failed: list[str]) -> str:
    """Why this run's table would not stand for a full `make bench`; empty when it would."""
    if args.quick:
        return "a --quick run"
    if args.only:
        return "only some benchmarks ran (--only)"
    if docker is None:
        return "no Docker side"
    if failed:
        return f"failed: {', '.join(failed)}"
    return ""


def engine_words(docker: Docker | None) -> str:
    """The Docker engine's version and storage driver, which the container figures depend on."""
    if docker is None:
        return ""
    info = docker.client.info()
    return f"Docker engine {info.get('ServerVersion', '?')} ({info.get('Driver', '?')})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short runs that keep the benchmarks working (CI)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--no-docker", action="store_true", help="local backend only")
    parser.add_argument("--keep", type=Path, help="keep experiment files and run directories here")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # One session for everything this run starts, in containers or through `clocklab up`.
    os.environ.setdefault(SESSION_ENV, f"bench-{secrets.token_hex(4)}")
    names = [name for name in RUN_ORDER if name in (args.only or BENCHMARKS)]
    docker, missing = None, "--no-docker"
    if not args.no_docker:
        try:
            docker = Docker.connect()
        except DockerUnavailable as e:
            missing = str(e)
            print(f"bench: no Docker side ({missing}); local rows only", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="clocklab-bench-") as tmp:
        work = args.keep or Path(tmp)
        ctx = Context(args.quick, work, docker, missing)
        sections: list[Section] = []
        failed = []
        try:
            for name in names:
                print(f"\n## {name}{' (quick)' if args.quick else ''}", flush=True)
                wait_until_quiet(args.quick)
                started = time.monotonic()
                try:
                    section = BENCHMARKS[name].run(ctx)
                    section.seconds = time.monotonic() - started
                    path = section.write_json(args.quick)
                except Exception as e:  # one broken benchmark must not hide the others
                    failed.append(name)
                    traceback.print_exc()
                    print(f"bench {name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
                    continue
                print(section.markdown(), flush=True)
                print(f"({section.seconds:.0f} s; {path.relative_to(RESULTS.parent.parent)})")
                sections.append(section)
        finally:
            if docker is not None:
                docker.remove_all()
    print("\n## all figures\n")
    order = list(BENCHMARKS)
    table = combined_table(sorted(sections, key=lambda section: order.index(section.name)))
    print(table)
    partial = why_partial(args, docker, failed)
    if partial:
        print(f"bench: docs/performance.md left as it was: {partial}")
    else:
        path = write_performance(table, describe_machine(engine_words(docker)))
        print(f"bench: the table is in {path}")
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
