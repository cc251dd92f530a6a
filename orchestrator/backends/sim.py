"""The sim backend: a trial's VMs in virtual time (vm_node.sim), from the same plan.

Each VM is configured from the plan exactly as a real VM of the trial is
(`TrialPlan.vm_settings`, read by `NodeConfig.from_env`), so link conditions
and clock skew are the VMs' own. The fault schedule becomes the simulator's
faults: kill and host_crash kill VMs and start them again, pause freezes one,
partition and host_partition cut the network. VM i runs on host i mod n, with
n the fewest hosts the schedule and the skew name.

Nothing waits on the wall clock: the run id and the agreed start are drawn
from the experiment's seed and the trial number, so the same trial writes the
same bytes every time. The run directory is the one a real trial writes: the
VMs' logs, orchestrator.log with each fault's begin and end, and the manifest,
whose times are the virtual clock's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from pathlib import Path

import msgspec
import orjson

from orchestrator.backends import CAPABILITIES
from orchestrator.errors import UnexpectedError
from orchestrator.faults import Fault
from orchestrator.fidelity import RATE_TOLERANCE, trial_fidelity
from orchestrator.monitor import LogFollower
from orchestrator.plan import TrialPlan
from orchestrator.runlock import sole_writer
from orchestrator.tracebacks import append_to_log
from orchestrator.trial import TrialResult, planned_manifest
from vm_node.config import NodeConfig
from vm_node.rundir import FaultRecord, Outcome, RunDir
from vm_node.sim import Cut, Kill, OpenLog, Pause, Simulation, Tamper, Wire, simulate

NAME = "sim"
EPOCH = 1_700_000_000.0  # virtual starts fall within a year from here
WIRE = Wire(delay=0.0002)  # a message between two containers on one machine, read and queued
TICK_LATE = 0.001  # wall seconds a real VM's tick runs after its deadline, about


@dataclasses.dataclass(frozen=True, slots=True)
class Simulated:
    """The sim backend, as a command's trials run on it. `tamper` stands for a faulty
    network (tests make checks fail with it); None is the network as it is."""

    tamper: Tamper | None = None
    name: str = NAME


def sim_hosts(plan: TrialPlan) -> int:
    """The fewest hosts that hold every host the schedule and the skew name (at least 2
    where a fault acts on a host: one host alone has nothing to be cut off from)."""
    e = plan.experiment
    named = [f.host for f in e.faults if f.host is not None] + [h for h, _ in e.skew.hosts]
    if not named:
        return plan.hosts
    least = 2 if any(f.host is not None for f in e.faults) else 1
    return max(least, max(named) + 1)


def sim_plan(plan: TrialPlan) -> TrialPlan:
    """The plan with a run id from the seed and trial (the logs carry it) and its hosts."""
    e = plan.experiment
    return dataclasses.replace(plan, run=f"{e.name}-t{plan.trial}-s{e.seed}", hosts=sim_hosts(plan))


def start_of(plan: TrialPlan) -> float:
    """The agreed start on the virtual clock, drawn from the seed and trial."""
    rng = random.Random(f"clocklab:{plan.experiment.seed}:{plan.trial}:start")
    return EPOCH + rng.randrange(365 * 86400)


def node_configs(plan: TrialPlan) -> list[NodeConfig]:
    """Each VM's configuration from the settings a real VM of the plan is started with;
    a key, where frames are signed, drawn from the run id (no log shows it)."""
    configs = [NodeConfig.from_env(plan.vm_settings(vm)) for vm in range(plan.vms)]
    if not plan.experiment.auth:
        return configs
    key = hashlib.sha256(f"clocklab-sim-key:{plan.run}".encode()).hexdigest()
    return [msgspec.structs.replace(c, auth_key=key) for c in configs]


def sim_faults(faults: tuple[Fault, ...], vms: int, hosts: int) -> list[Kill | Pause | Cut]:
    """The schedule as the simulator's faults (link conditions are the VMs' own)."""
    found: list[Kill | Pause | Cut] = []
    for f in faults:
        on_host = tuple(vm for vm in range(vms) if f.host is not None and vm % hosts == f.host)
        match f.kind:
            case "kill":
                found += [Kill(vm=vm, at=f.at, down_for=f.duration) for vm in f.targets]
            case "host_crash":
                found += [Kill(vm=vm, at=f.at, down_for=f.duration) for vm in on_host]
            case "pause":
                found += [Pause(vm=vm, at=f.at, duration=f.duration) for vm in f.targets]
            case "partition":
                found.append(Cut(groups=f.groups, at=f.at, duration=f.duration))
            case "host_partition" if on_host and len(on_host) < vms:
                rest = tuple(vm for vm in range(vms) if vm not in on_host)
                found.append(Cut(groups=(on_host, rest), at=f.at, duration=f.duration))
    return found


class SimTrial:
    """One trial in virtual time, with the result a real trial gives."""

    def __init__(
        self,
        plan: TrialPlan,
        out: Path,
        tamper: Tamper | None = None,
        rate_tolerance: float = RATE_TOLERANCE,
    ) -> None:
        self.plan = sim_plan(plan)
        self.out = out
        self.run_dir = RunDir.of(out, plan.experiment.name, plan.trial)
        self.tamper = tamper
        self.rate_tolerance = rate_tolerance
        self.backend_name = NAME

    def check_schedule(self) -> None:
        """Every fault kind runs here: nothing to refuse."""

    def run(self) -> TrialResult:
        with sole_writer(self.out, self.plan.experiment.name, self.plan.trial):
            return self._run()

    def _run(self) -> TrialResult:
        plan, run_dir = self.plan, self.run_dir
        e = plan.experiment
        run_dir.empty()
        start_at = start_of(plan)
        configs = node_configs(plan)
        faults = sim_faults(e.faults, plan.vms, plan.hosts)
        manifest = planned_manifest(plan, NAME, start_at - 1.0)
        run_dir.write_manifest(manifest)
        began = time.monotonic()

        def simulation(open_log: OpenLog) -> Simulation:
            seed = f"clocklab:{e.seed}:{plan.trial}"
            return Simulation(
                configs, start_at, open_log, seed, WIRE, faults, self.tamper, TICK_LATE
            )

        try:
            sim = simulate(simulation, run_dir)
        except Exception as error:  # a bug: its traceback stays with the run
            manifest = manifest.with_(
                outcome=Outcome.FAILED, error=f"{type(error).__name__}: {error}"
            )
            run_dir.write_manifest(manifest)
            raise UnexpectedError(error, append_to_log(error, run_dir.orchestrator_log)) from error
        records = self._fault_records(start_at)
        progress = LogFollower(run_dir, plan.vms).poll()
        stops = {str(i): p.stop for i, p in progress.items()}
        manifest = manifest.with_(
            outcome=Outcome.COMPLETED,
            launched_at=start_at - 1.0,
            ended_at=sim.now,
            environment={
                "backend": NAME,
                "hosts": plan.hosts,
                "wire_delay": WIRE.delay,
                "wall_seconds": round(time.monotonic() - began, 6),
                "faults": list(CAPABILITIES),
            },
            first_tick_at=min(
                (p.first_tick_at for p in progress.values() if p.first_tick_at), default=None
            ),
            vm_summaries=stops,
            fidelity=trial_fidelity(stops, self.rate_tolerance, records).to_dict(),
            faults=tuple(records),
        )
        run_dir.write_manifest(manifest)
        return TrialResult(run_dir, manifest, progress)

    def _fault_records(self, start_at: float) -> list[FaultRecord]:
        """Each fault with its start and end on the virtual clock, and orchestrator.log's
        lines for them, as the injector writes them for a real trial."""
        e = self.plan.experiment
        steps = []
        records = []
        for f in e.faults:
            start, end = (start_at + t / e.time_scale for t in (f.at, f.end))
            records.append(
                msgspec.convert(f.describe() | {"start": start, "end": end}, FaultRecord)
            )
            steps += [(start, True, f), (end, False, f)]
        if not steps:
            return records
        with self.run_dir.orchestrator_log.open("ab") as log:
            for when, begin, f in sorted(steps, key=lambda s: (s[0], s[1])):
                line = {"event": "fault_begin" if begin else "fault_end", "timestamp": when}
                log.write(orjson.dumps(line | f.describe()) + b"\n")
        return records
