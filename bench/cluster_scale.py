"""A large fleet across hosts: 100 VMs over 5 simulated hosts at time scale 1 for a minute.

The original experiment's rules (rates drawn from 1-6 ticks/s) through
`clocklab up --backend swarm` on a simulated cluster (bench.cluster: the one up,
or one made for it), VM i on host i mod 5. Per VM: its rate error, each held to
0.01 %. The orchestrator's own CPU (the `clocklab up` process, user + system,
children not counted) per wall second from the first tick to the last stop,
held to 5 % of one core, beside the whole machine's CPU over the same stretch:
every host and VM shares this machine's cores.
"""

from __future__ import annotations

import numpy as np

from bench.cluster import ClusterBusy, simulated_cluster
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.scale import MachineCpu
from bench.trials import TrialSpec, run_trial

NAME = "cluster_scale"
TITLE = "A large fleet across simulated hosts at time scale 1"
FLEET = {False: (100, 5, 60.0), True: (10, 3, 5.0)}  # VMs, hosts, seconds
WITHIN_PCT = 0.01  # each VM's rate error
CPU_PCT = 5.0  # the orchestrator's share of one core


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE, columns=("measure", "measured", "detail"))
    if ctx.docker is None:
        section.notes.append(f"skipped: {ctx.docker_missing}")
        return section
    vms, hosts, seconds = FLEET[ctx.quick]
    spec = TrialSpec(f"bench-cluster-{vms}", vms=vms, duration=seconds)
    machine = MachineCpu()
    try:
        with simulated_cluster(ctx, hosts) as cluster:
            print(f"  {vms} VMs on {hosts} simulated hosts for {seconds:g} s at time scale 1")
            machine.start()
            try:
                context = cluster.layout.manager_context
                trial = run_trial(spec, "swarm", ctx.work / NAME, context=context)
            finally:
                machine.stop()
    except ClusterBusy as e:
        section.notes.append(f"skipped: {e}")
        return section
    fleet = f"{vms} VMs on {hosts} hosts"
    if not trial.ok:
        section.notes.append(f"the trial {trial.manifest.outcome}: {trial.manifest.error}")
    errors = np.array([abs(t.error_pct) for t in trial.timings])
    within = int((errors <= WITHIN_PCT).sum())
    worst = float(errors.max()) if len(errors) == vms else float("nan")
    section.add_row(
        f"VMs within {WITHIN_PCT} % of their rate, {fleet}, {seconds:g} s",
        f"{within}/{vms}",
        f"worst {worst:.5f} %, median {float(np.median(errors)):.5f} %"
        if len(errors)
        else "no VM logged a rate",
    )
    cpu = trial.cpu_running
    busy = machine.busy(trial.first_tick_at, trial.last_stop_at)
    section.add_row(
        "orchestrator CPU, first tick to last stop",
        "—" if cpu is None else f"{100 * cpu:.2f} % of one core",
        "—" if busy is None else f"the whole machine {100 * busy:.1f} % of all cores",
    )
    section.figures += [
        Figure(
            f"{fleet} at time scale 1: worst VM rate error",
            worst,
            "%",
            target=Target("at_most", WITHIN_PCT, "%"),
            ratio_of="none",
            note=f"{within}/{vms} VMs within {WITHIN_PCT} %",
        ),
        Figure(
            f"{fleet}: the orchestrator's CPU while the VMs tick",
            None if cpu is None else 100 * cpu,
            "%",
            target=Target("at_most", CPU_PCT, "%"),
            ratio_of="none",
        ),
    ]
    section.data = {
        "vms": vms,
        "hosts": hosts,
        "seconds": seconds,
        "outcome": trial.manifest.outcome,
        "errors_pct": [t.error_pct for t in trial.timings],
        "orchestrator_cpu": cpu,
        "machine_cpu": busy,
        "fidelity": trial.manifest.fidelity,
    }
    return section
