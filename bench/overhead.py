"""4. Trial overhead: from `clocklab up` to the first tick, and from the last tick to the end.

`clocklab up` runs in a child process, timed from just before it starts. The
first tick is the earliest tick line of any VM (the manifest's
`first_tick_at`); teardown runs from the last VM's `stop` line until the
command has exited (noticing the end, `docker compose down` or stopping the
processes, writing the manifest). Reference: the same number of bare
processes or containers started and stopped (bench/fleet.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench import fleet
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.trials import TrialRun

NAME = "overhead"
TITLE = "Trial overhead: command start to first tick, and teardown"
SCALE_PCT = 0.1
START_RATIO = 1.7  # docker: command start → first tick, over 50 bare containers' start
COMMAND_CPU_PCT = 5.0  # the orchestrator's own CPU while it waits on its VMs


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "backend",
            "VMs",
            "start → launched (s)",
            "start → first tick (s)",
            "teardown (s)",
            "bare start (s)",
            "bare stop (s)",
            "trial s",
            "command CPU starting / running (%)",
            "worst rate error (%)",
            "outcome",
        ),
    )
    data: dict[str, Any] = {}
    for backend in ctx.backends:
        for n in fleet.sizes(ctx, backend):
            bare = fleet.bare(ctx, backend, n)
            trial = fleet.trial(ctx, backend, n)
            launched = trial.manifest.launched_at
            launch_s = launched - trial.command_started if launched else None
            outcome = str(trial.manifest.outcome or "did not run")
            if trial.attempts > 1:
                outcome += f" (attempt {trial.attempts})"
            section.add_row(
                backend,
                n,
                launch_s,
                trial.start_to_first_tick,
                trial.teardown,
                bare.start_s,
                bare.stop_s,
                trial.spec.duration,
                f"{_pct(trial.cpu_starting)} / {_pct(trial.cpu_running)}",
                f"{trial.worst_error_pct:.4f}",
                outcome,
            )
            data[f"{backend}-{n}"] = {
                "launch_s": launch_s,
                "start_to_first_tick_s": trial.start_to_first_tick,
                "teardown_s": trial.teardown,
                "bare_start_s": bare.start_s,
                "bare_stop_s": bare.stop_s,
                "duration_s": trial.spec.duration,
                "command_cpu_starting": trial.cpu_starting,
                "command_cpu_running": trial.cpu_running,
                "worst_error_pct": trial.worst_error_pct,
                "errors_pct": {t.vm: t.error_pct for t in trial.timings},
                "outcome": trial.manifest.outcome,
                "error": trial.manifest.error,
                "attempts": trial.attempts,
            }
            if backend == "docker" or n == max(fleet.sizes(ctx, backend)):
                _figures(ctx, section, backend, n, trial, bare)
    section.data = data
    if ctx.docker and fleet.SCALE_TEST in fleet.sizes(ctx, "docker"):
        scale = fleet.trial(ctx, "docker", fleet.SCALE_TEST)
        section.figures.append(
            Figure(
                f"{fleet.SCALE_TEST} VMs in {fleet.SCALE_TEST} containers, time scale 1, "
                f"{scale.spec.duration:g} s: worst VM rate error",
                scale.worst_error_pct,
                "%",
                reference_name="rates 1-6 ticks/s drawn as in the original",
                target=Target("at_most", SCALE_PCT, "%"),
                ratio_of="none",
            )
        )
    if not ctx.docker:
        section.notes.append(f"docker backend skipped: {ctx.docker_missing}")
    section.notes.append(
        "start → launched: the command's own start-up, the image check and `compose up` "
        "(local: spawning the processes); the rest of start → first tick is the VMs "
        "starting, connecting to every peer and agreeing on a start 0.25 s ahead"
    )
    return section


def _median_start(ctx: Context, section: Section, n: int, start: Figure) -> Figure:
    """The scale test's start figure: the pair with the median ratio, where it was repeated."""
    pairs = sorted(fleet.start_pairs(ctx, n), key=lambda pair: pair.ratio)
    if len(pairs) < 2:  # none, or the trial's own
        return start
    ratios = ", ".join(f"{p.vms_s:.1f} / {p.bare_s:.1f} s = {p.ratio:.2f}x" for p in pairs)
    section.notes.append(f"docker, {n} VMs, start against bare containers, each pair: {ratios}")
    median = pairs[len(pairs) // 2]
    return replace(
        start,
        name=f"{start.name}, median of {len(pairs)}",
        value=median.vms_s,
        reference=median.bare_s,
    )


def _pct(share: float | None) -> str:
    return f"{share * 100:.1f}" if share is not None else "–"


def _figures(
    ctx: Context, section: Section, backend: str, n: int, trial: TrialRun, bare: fleet.Bare
) -> None:
    what = "containers" if backend == "docker" else "processes"
    at_scale = backend == "docker" and n == fleet.SCALE_TEST
    start = Figure(
        f"{backend}, {n} VMs: command start → first tick",
        trial.start_to_first_tick,
        "s",
        reference=bare.start_s,
        reference_name=f"start {n} bare {what}",
        target=Target("at_most", START_RATIO, "×") if at_scale else None,
        target_on="ratio",
    )
    if at_scale:
        start = _median_start(ctx, section, n, start)
    section.figures.append(start)
    section.figures.append(
        Figure(
            f"{backend}, {n} VMs: teardown (last stop → command exits)",
            trial.teardown,
            "s",
            reference=bare.stop_s,
            reference_name=f"stop {n} bare {what}",
        )
    )
    for phase, share in (("starting", trial.cpu_starting), ("running", trial.cpu_running)):
        section.figures.append(
            Figure(
                f"{backend}, {n} VMs: the command's own CPU while its VMs are {phase}",
                share * 100 if share is not None else None,
                "%",
                reference_name="of one core",
                target=Target("at_most", COMMAND_CPU_PCT, "%"),
                ratio_of="none",
            )
        )
