"""Partition timing on the docker backend: how soon a cut stops traffic, how soon links return.

A 4-VM trial, partition [[0, 1], [2, 3]], every VM at 30 ticks/s. From its logs and
the manifest's record of the fault (its real start and end):

- stop: from the fault's start to the last receive across the cut (0 where none came
  after the start). A receive is logged at the tick that takes it from the inbox, up to
  one tick (33 ms) after it arrived, so this is an upper bound.
- back: from the fault's end until every link across the cut is back: for each of
  them, the first receive across it or its `peer_up`, whichever comes first; the latest.

Targets (issue 22): stop within 0.2 s, back within 2 s.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.context import Context
from bench.report import Figure, Section, Target
from bench.trials import TrialSpec, read_records, run_trial
from vm_node.rundir import RunDir

NAME = "partition"
TITLE = "Partition: traffic stopped at the cut, links back after it"
SIDES = ((0, 1), (2, 3))
RATE = 30.0
TRIALS = {False: 3, True: 1}
STOP_TARGET_S = 0.2
BACK_TARGET_S = 2.0


def spec(trial: int, quick: bool) -> TrialSpec:
    groups = "[[0, 1], [2, 3]]"
    return TrialSpec(
        name=f"partition-{trial}",
        vms=4,
        duration=20.0,
        time_scale=2.0 if quick else 1.0,
        rates=(RATE,) * 4,
        seed=2026 + trial,
        faults=(f"{{kind: partition, at: 6, duration: 6, groups: {groups}}}",),
    )


def across(vm: int, peer: int) -> bool:
    return (vm in SIDES[0]) != (peer in SIDES[0])


def timings(run_dir: Path, start: float, end: float) -> tuple[float, float]:
    """(stop, back) in seconds, as the module's docstring defines them."""
    last_across = start
    back_at: dict[tuple[int, int], float] = {}
    for vm, _, path in RunDir(run_dir).log_files():
        for line in read_records(path):
            event, at = line.get("event"), float(line.get("timestamp", 0.0))
            peer = line.get("from") if event == "receive" else line.get("peer")
            if event not in ("receive", "peer_up") or peer is None or not across(vm, peer):
                continue
            if event == "receive" and start <= at < end:
                last_across = max(last_across, at)
            if at >= end:
                link = (vm, int(peer))
                back_at[link] = min(back_at.get(link, math.inf), at)
    links = [(a, b) for a in range(4) for b in range(4) if across(a, b)]
    back = max(back_at.get(link, math.inf) for link in links) - end
    return last_across - start, back


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE, columns=("trial", "stop (s)", "back (s)"))
    if ctx.docker is None:
        section.notes.append(f"skipped: no Docker side ({ctx.docker_missing})")
        return section
    stops, backs = [], []
    for trial in range(TRIALS[ctx.quick]):
        result = run_trial(spec(trial, ctx.quick), "docker", ctx.work / NAME)
        if not result.ok:
            raise RuntimeError(f"the partition trial failed: {result.manifest.error}")
        (record,) = result.manifest.faults
        assert record.start is not None and record.end is not None
        stop, back = timings(result.run_dir, record.start, record.end)
        section.add_row(trial + 1, stop, back)
        stops.append(stop)
        backs.append(back)
    section.data = {"stop_s": stops, "back_s": backs}
    section.figures += [
        Figure(
            "partition: traffic across the cut stops (worst)",
            max(stops),
            "s",
            target=Target("at_most", STOP_TARGET_S, "s"),
        ),
        Figure(
            "partition: every link back after the heal (worst)",
            max(backs),
            "s",
            target=Target("at_most", BACK_TARGET_S, "s"),
        ),
    ]
    section.notes.append(
        f"4 VMs at {RATE:g} ticks/s, partition {list(SIDES)}; stop is an upper bound "
        "(a receive is logged at the tick that takes it, up to one tick after arrival)"
    )
    return section
