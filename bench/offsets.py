"""Clock offsets: a skew of 0.3 s on one VM, recovered from the logs within their bound.

Each trial has 3 VMs, VM 1's clock 0.3 s ahead (`skew:`). analysis.offsets bounds
every VM pair's offset from the messages between them; a pair is recovered when
its configured offset lies within that interval. The figure is the widest
interval, which the VMs' rates set: a receive is logged at the tick that takes
it from the inbox. Rows: the simulated trial (vm_node.sim, 2 ms on the wire),
the local backend, the docker backend, and the swarm backend on a simulated
cluster of 3 hosts (bench.cluster: the one up, or one made for it; VM i on host
i mod 3, host1's clock 0.3 s ahead), where every host pair's bound on the hosts'
own clocks must hold their true offset, 0 (the hosts share this machine's clock).
The nodes' clocks as the orchestrator read them (manifest `node_offsets`) are
printed beside, with their uncertainty: half the read's round trip.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from analysis.offsets import TrialOffsets, offset_bounds
from bench.cluster import ClusterBusy, simulated_cluster
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.trials import TrialSpec, run_trial
from vm_node.sim import SyntheticRun, write_run

NAME = "offsets"
TITLE = "Clock offsets recovered from the logs, with a skew of 0.3 s on one VM"
SKEW = 0.3  # seconds VM 1 is ahead
RATES = (200.0, 250.0, 300.0)  # ticks per second: a receive waits at most a few ms for its tick
REAL_S = {False: 20.0, True: 5.0}
TARGET_MS = 5.0  # the widest bound between a cluster's hosts
HOSTS = 3


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "where",
            "VM pairs recovered",
            "widest bound (ms)",
            "narrowest bound (ms)",
            "node clocks read (offset ± uncertainty, ms)",
        ),
    )
    seconds = REAL_S[ctx.quick]
    with tempfile.TemporaryDirectory(prefix="clocklab-bench-") as tmp:
        spec = SyntheticRun(rates=RATES, duration=seconds, clock_offsets=(0.0, SKEW, 0.0))
        _row(section, "simulated trial", offset_bounds(write_run(spec, Path(tmp))))
    trial = dataclasses.replace(
        TrialSpec.at_rates("offsets", RATES, 1.0, seconds), skew=f"{{vms: {{1: {SKEW}}}}}"
    )
    for backend in ctx.backends:
        print(f"  {backend}: {len(RATES)} VMs for {seconds:g} s, vm1 {SKEW} s ahead")
        done = run_trial(trial, backend, ctx.work / NAME / backend)
        if not done.ok:
            raise RuntimeError(f"the {backend} trial failed: {done.manifest.error}")
        _row(section, f"{backend} backend", offset_bounds(done.run_dir))
    if ctx.docker is not None:
        _on_cluster(ctx, section, dataclasses.replace(trial, skew=f"{{hosts: {{1: {SKEW}}}}}"))
    section.notes.append(
        f"rates {', '.join(f'{r:g}' for r in RATES)} ticks/s, {seconds:g} s; a pair is recovered "
        "when its configured offset lies within the interval its messages allow"
    )
    return section


def _row(section: Section, where: str, offsets: TrialOffsets) -> None:
    held = offsets.vms.holds(offsets.configured_difference)
    pairs = len(held) * (len(held) - 1)
    widths = offsets.vms.width[~np.eye(len(held), dtype=bool)]
    reads = "; ".join(
        f"{m.node} {m.phase} {m.offset * 1000:+.3f} ± {m.uncertainty * 1000:.3f}"
        for m in offsets.measured
    )
    recovered = int(held.sum()) - len(held)
    section.add_row(
        where, f"{recovered}/{pairs}", widths.max() * 1000, widths.min() * 1000, reads or "–"
    )
    section.figures.append(
        Figure(f"offset bound, {where} (widest VM pair)", widths.max() * 1000, "ms")
    )
    section.data[where] = {
        "recovered": recovered,
        "pairs": pairs,
        "low_s": offsets.vms.low.tolist(),
        "high_s": offsets.vms.high.tolist(),
        "configured_s": offsets.configured.tolist(),
        "measured": [
            {"node": m.node, "phase": m.phase, "offset_s": m.offset, "uncertainty_s": m.uncertainty}
            for m in offsets.measured
        ],
    }
    if recovered != pairs:
        raise RuntimeError(f"{where}: only {recovered} of {pairs} VM pairs within their bound")


def _on_cluster(ctx: Context, section: Section, trial: TrialSpec) -> None:
    """The swarm row: VM i on host i mod 3, host1's clock SKEW ahead. Every host pair's
    bound on the hosts' own clocks must hold their true offset: 0, one kernel's clock."""
    try:
        with simulated_cluster(ctx, HOSTS) as cluster:
            print(f"  swarm on {HOSTS} simulated hosts: {trial.vms} VMs, host1 {SKEW} s ahead")
            where = ctx.work / NAME / "swarm"
            done = run_trial(trial, "swarm", where, context=cluster.layout.manager_context)
    except ClusterBusy as e:
        section.notes.append(f"no swarm row: {e}")
        return
    if not done.ok:
        raise RuntimeError(f"the swarm trial failed: {done.manifest.error}")
    offsets = offset_bounds(done.run_dir)
    _row(section, f"swarm, {HOSTS} simulated hosts", offsets)
    hosts = offsets.hosts
    across = ~np.eye(len(offsets.nodes), dtype=bool)
    held = int(hosts.holds(np.zeros_like(hosts.low))[across].sum())
    widest = float(hosts.width[across].max()) * 1000
    section.figures[-1] = Figure(
        f"offset bound between {HOSTS} simulated hosts (widest host pair)",
        widest,
        "ms",
        target=Target("at_most", TARGET_MS, "ms"),
        note=f"{held}/{int(across.sum())} host pairs hold their true offset, 0",
    )
    section.data["swarm hosts"] = {
        "nodes": list(offsets.nodes),
        "held": held,
        "low_s": hosts.low.tolist(),
        "high_s": hosts.high.tolist(),
    }
    if held != across.sum():
        raise RuntimeError(f"only {held} of {int(across.sum())} host pairs within their bound")
