"""The trials of 3, 20 and 50 VMs at the original rates, and their bare references.

Both the overhead and the memory benchmark read these, so each is run once
per bench run (cached). The 50-VM trial in containers is the scale test: a
real minute at time scale 1, every VM in its own container. Its start is
timed START_REPEATS times, each right after a start of bare containers
(`start_pairs`): on two cores one such pair swings by a tenth either way.

References, measured in the same run: the same number of bare Python
processes (`python -c 'signal.pause()'`), and the same number of containers
from the same image, rendered from the same stack template, running that
instead of a VM (`docker compose up -d` to `down`).
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.context import Context
from bench.trials import Memory, MemorySampler, TrialRun, TrialSpec, peak_rss_mb, run_trial

SIZES = {False: (3, 20, 50), True: (3, 20)}
DOCKER_SIZES = {False: (3, 20, 50), True: (3,)}
DURATION = {False: 10.0, True: 3.0}  # simulated = real seconds (time scale 1)
SCALE_TEST = 50  # VMs in containers for a real minute
SCALE_DURATION = {False: 60.0, True: 3.0}
START_REPEATS = {False: 3, True: 1}
START_DURATION = 3.0  # the repeats only need to start
BARE = "import signal, sys; sys.stdout.write('up\\n'); sys.stdout.flush(); signal.pause()"


@dataclass(slots=True)
class Bare:
    """N processes or containers that do nothing: start, stop, memory."""

    n: int
    start_s: float  # until every one runs (processes: has printed `up`)
    stop_s: float
    memory: Memory = field(default_factory=Memory)


@dataclass(frozen=True, slots=True)
class StartPair:
    """One start of n VMs in containers, and of n bare containers just before it."""

    vms_s: float  # command start → first tick
    bare_s: float

    @property
    def ratio(self) -> float:
        return self.vms_s / self.bare_s


def sizes(ctx: Context, backend: str) -> tuple[int, ...]:
    return (DOCKER_SIZES if backend == "docker" else SIZES)[ctx.quick]


@functools.cache
def trial(ctx: Context, backend: str, vms: int) -> TrialRun:
    scale_test = backend == "docker" and vms == SCALE_TEST
    duration = (SCALE_DURATION if scale_test else DURATION)[ctx.quick]
    print(f"  {vms} VMs on {backend}, {duration:g} s at time scale 1")
    spec = TrialSpec(f"bench-fleet-{backend}-{vms}", vms=vms, duration=duration)
    return run_trial(spec, backend, ctx.work / "fleet", memory=True)


@functools.cache
def bare(ctx: Context, backend: str, n: int) -> Bare:
    print(f"  reference: {n} bare {'containers' if backend == 'docker' else 'processes'}")
    return bare_containers(ctx, n) if backend == "docker" else bare_processes(n)


@functools.cache
def start_pairs(ctx: Context, n: int) -> tuple[StartPair, ...]:
    """The docker start of `n` VMs beside `n` bare containers: the trial and reference
    above, then short trials, each after a bare start of its own; pairs whose trial
    never ticked are left out."""
    runs = [(trial(ctx, "docker", n), bare(ctx, "docker", n))]
    for repeat in range(1, START_REPEATS[ctx.quick]):
        print(f"  start of {n} VMs, repeat {repeat}: bare containers, then the VMs")
        reference = bare_containers(ctx, n)
        spec = TrialSpec(f"bench-start-{n}-{repeat}", vms=n, duration=START_DURATION)
        runs.append((run_trial(spec, "docker", ctx.work / "fleet"), reference))
    return tuple(
        StartPair(vms.start_to_first_tick, reference.start_s)
        for vms, reference in runs
        if vms.start_to_first_tick is not None
    )


def bare_processes(n: int) -> Bare:
    started = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE) for _ in range(n)
    ]
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.readline()
    up = time.perf_counter()
    memory = Memory()
    for vm, proc in enumerate(procs):
        memory.rss_mb[vm] = peak_rss_mb(proc.pid) or float("nan")
    stopping = time.perf_counter()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    return Bare(n, up - started, time.perf_counter() - stopping, memory)


def bare_containers(ctx: Context, n: int) -> Bare:
    from orchestrator.backends.compose.docker_compose import Compose
    from orchestrator.backends.compose.render import render_stack, write_stack
    from orchestrator.experiment import Experiment
    from orchestrator.plan import plan_trial
    from orchestrator.poll import poll

    docker = ctx.docker
    assert docker is not None
    plan = plan_trial(Experiment(name=f"bench-bare-{n}", vms=n), 1)
    document = render_stack(plan, docker.image, docker.labels)
    for service in document["services"].values():
        service["entrypoint"] = ["/opt/clocklab/bin/python", "-c", BARE]
    folder = ctx.work / "bare" / str(n)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    file = folder / "compose.yaml"
    write_stack(document, file)
    compose = Compose(docker.endpoint)
    started = time.perf_counter()
    try:
        compose.up(file, plan.project)
        up = time.perf_counter()
        sampler = MemorySampler(plan.run, f"bench-bare-{n}", marker=b"signal.pause()")
        # the processes are starting: wait until all are there
        poll(lambda: len(sampler.sample_now().rss_mb) >= n, timeout=30, interval=0.2)
        time.sleep(0.5)
        memory = sampler.sample_now(docker.client)
    finally:
        stopping = time.perf_counter()
        compose.down(file, plan.project)
        down = time.perf_counter()
    return Bare(n, up - started, down - stopping, memory)
