"""5. Memory: peak RSS of each VM process, and each container's memory.

Sampled while the trials of bench/fleet.py run: every half second the peak
RSS (VmHWM) of every `python -m vm_node` of the trial, found in /proc (for
containers too: their processes are the host's); every few seconds each
container's memory as `docker stats` counts it (cgroup usage less inactive
file cache). Reference, in the same run: a bare Python interpreter, as a
process and in a container from the same image.
"""

from __future__ import annotations

from statistics import mean
from typing import Any

from bench import fleet
from bench.context import Context
from bench.report import Figure, Section, Target

NAME = "memory"
TITLE = "Memory per VM (RSS) and per container"
TARGET_MB = 40.0


def _stats(values: dict[int, float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return max(values.values()), mean(values.values())


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "backend",
            "VMs",
            "VM RSS max (MB)",
            "VM RSS mean (MB)",
            "container max (MB)",
            "container mean (MB)",
            "bare interpreter RSS (MB)",
            "bare container (MB)",
            "VMs sampled",
        ),
    )
    data: dict[str, Any] = {}
    for backend in ctx.backends:
        for n in fleet.sizes(ctx, backend):
            bare = fleet.bare(ctx, backend, n)
            trial = fleet.trial(ctx, backend, n)
            m = trial.memory
            rss_max, rss_mean = _stats(m.rss_mb)
            box_max, box_mean = _stats(m.container_mb)
            bare_rss = _stats(bare.memory.rss_mb)[1]
            bare_box = _stats(bare.memory.container_mb)[1]
            section.add_row(
                backend,
                n,
                rss_max,
                rss_mean,
                box_max,
                box_mean,
                bare_rss,
                bare_box,
                f"{len(m.rss_mb)} of {n}",
            )
            data[f"{backend}-{n}"] = {
                "rss_mb": m.rss_mb,
                "container_mb": m.container_mb,
                "container_rss_mb": m.container_rss_mb,
                "bare_rss_mb": bare.memory.rss_mb,
                "bare_container_mb": bare.memory.container_mb,
            }
            if n != max(fleet.sizes(ctx, backend)):
                continue
            section.figures.append(
                Figure(
                    f"{backend}, {n} VMs: peak RSS of the largest VM",
                    rss_max,
                    "MB",
                    reference=bare_rss,
                    reference_name="bare Python interpreter",
                    target=Target("at_most", TARGET_MB, "MB"),
                    note=f"mean {rss_mean:.1f} MB" if rss_mean else "",
                )
            )
            if backend == "docker":
                section.figures.append(
                    Figure(
                        f"docker, {n} VMs: memory of the largest container",
                        box_max,
                        "MB",
                        reference=bare_box,
                        reference_name="container with a bare interpreter",
                        note=f"mean {box_mean:.1f} MB" if box_mean else "",
                    )
                )
    section.data = data
    if not ctx.docker:
        section.notes.append(f"docker backend skipped: {ctx.docker_missing}")
    return section
