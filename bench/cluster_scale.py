"""A large fleet across hosts: 100 VMs over 5 simulated hosts at time scale 1 for a minute.

The original experiment's rules (rates drawn from 1-6 ticks/s) through
`clocklab up --backend swarm` on a simulated cluster (bench.cluster: the one up,
or one made for it), VM i on host i mod 5. Per VM: its rate error, each held to
0.01 %. The orchestrator's own CPU (the `clocklab up` process, user + system,
children not counted) per wall second from the first tick to the last stop,
held to 5 % of one core, beside the whole machine's CPU over the same stretch:
every host and VM shares this machine's cores. Reference, in the same run: the
same fleet on the local backend, as plain processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.cluster import ClusterBusy, simulated_cluster
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.scale import MachineCpu
from bench.trials import TrialRun, TrialSpec, run_trial

NAME = "cluster_scale"
TITLE = "A large fleet across simulated hosts at time scale 1"
FLEET = {False: (100, 5, 60.0), True: (10, 3, 5.0)}  # VMs, hosts, seconds
WITHIN_PCT = 0.01  # each VM's rate error
CPU_PCT = 5.0  # the orchestrator's share of one core


def run(ctx: Context) -> Section:
    section = Section(
        NAME, TITLE, columns=("measure", "on the cluster", "reference: local backend, same run")
    )
    if ctx.docker is None:
        section.notes.append(f"skipped: {ctx.docker_missing}")
        return section
    vms, hosts, seconds = FLEET[ctx.quick]
    spec = TrialSpec(f"bench-cluster-{vms}", vms=vms, duration=seconds)
    print(f"  reference: {vms} local VMs for {seconds:g} s at time scale 1")
    local = run_trial(spec, "local", ctx.work / NAME / "local")
    machine = MachineCpu()
    try:
        with simulated_cluster(ctx, hosts) as cluster:
            print(f"  {vms} VMs on {hosts} simulated hosts for {seconds:g} s at time scale 1")
            machine.start()
            try:
                context = cluster.layout.manager_context
                trial = run_trial(spec, "swarm", ctx.work / NAME / "swarm", context=context)
            finally:
                machine.stop()
    except ClusterBusy as e:
        section.notes.append(f"skipped: {e}")
        return section
    fleet = f"{vms} VMs on {hosts} hosts"
    for where, done in (("cluster", trial), ("local", local)):
        if not done.ok:
            section.notes.append(
                f"{where}: the trial {done.manifest.outcome}: {done.manifest.error}"
            )
    cluster_rates, local_rates = _rates(trial), _rates(local)
    section.add_row(
        f"VMs within {WITHIN_PCT} % of their rate, {fleet}, {seconds:g} s",
        cluster_rates.words,
        local_rates.words,
    )
    cpu, local_cpu = trial.cpu_running, local.cpu_running
    busy = machine.busy(trial.first_tick_at, trial.last_stop_at)
    section.add_row(
        "orchestrator CPU, first tick to last stop (% of one core)",
        _pct(cpu) + ("" if busy is None else f"; the machine {100 * busy:.0f} % of all cores"),
        _pct(local_cpu),
    )
    section.figures += [
        Figure(
            f"{fleet} at time scale 1: worst VM rate error",
            cluster_rates.worst,
            "%",
            reference=local_rates.worst,
            reference_name=f"{vms} local VMs",
            target=Target("at_most", WITHIN_PCT, "%"),
            ratio_of="none",
            note=f"{cluster_rates.within}/{vms} VMs within {WITHIN_PCT} %",
        ),
        Figure(
            f"{fleet}: the orchestrator's CPU while the VMs tick",
            None if cpu is None else 100 * cpu,
            "%",
            reference=None if local_cpu is None else 100 * local_cpu,
            reference_name=f"{vms} local VMs",
            target=Target("at_most", CPU_PCT, "%"),
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
        "local": {
            "outcome": local.manifest.outcome,
            "errors_pct": [t.error_pct for t in local.timings],
            "orchestrator_cpu": local_cpu,
        },
    }
    return section


@dataclass(frozen=True, slots=True)
class Rates:
    within: int  # VMs within WITHIN_PCT of their rate
    worst: float | None  # %, None where some VM logged no rate
    words: str


def _rates(trial: TrialRun) -> Rates:
    errors = np.array([abs(t.error_pct) for t in trial.timings])
    within = int((errors <= WITHIN_PCT).sum())
    if len(errors) < trial.spec.vms:
        return Rates(within, None, f"{within}/{trial.spec.vms}; {len(errors)} logged a rate")
    worst = float(errors.max())
    words = f"{within}/{trial.spec.vms}; worst {worst:.4f} %, median {np.median(errors):.4f} %"
    return Rates(within, worst, words)


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.2f} %"
