"""Whole trials as a user runs them (`clocklab up` in a child process), and what their logs say.

`run_trial` writes an experiment file, runs `clocklab up` on it, optionally
samples the memory of every VM process (and container) while it runs, and
reads back per VM: the configured and achieved rate and every tick's
lateness, `timestamp - (start_at + tick / (rate * time_scale))`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.cpu import CpuSampler
from bench.stats import error_pct, fitted_rate
from vm_node.rundir import Manifest, RunDir

TRIAL_TIMEOUT_SLACK = 180.0  # real seconds beyond the planned duration before we give up


@dataclass(frozen=True, slots=True)
class TrialSpec:
    """An experiment for the benchmark; `name` must be unique within one bench run."""

    name: str
    vms: int
    duration: float  # simulated seconds
    time_scale: float = 1.0
    rates: tuple[float, ...] | None = None  # None: drawn from 1-6 like the original
    seed: int = 2026
    faults: tuple[str, ...] = ()  # YAML flow mappings, as in an experiment file
    skew: str = ""  # a YAML flow mapping, as an experiment file's `skew:`

    def to_yaml(self) -> str:
        lines = [
            f"name: {self.name}",
            f"vms: {self.vms}",
            "event_range: 10",
            f"duration: {self.duration!r}",
            "trials: 1",
            f"seed: {self.seed}",
            f"time_scale: {self.time_scale!r}",
        ]
        if self.rates is None:
            lines.append("rate_range: [1, 6]")
        else:
            lines.append(f"rates: [{', '.join(repr(r) for r in self.rates)}]")
        if self.faults:
            lines += ["faults:", *(f"  - {fault}" for fault in self.faults)]
        if self.skew:
            lines.append(f"skew: {self.skew}")
        return "\n".join(lines) + "\n"

    @classmethod
    def at_rates(
        cls, name: str, rates: tuple[float, ...], time_scale: float, real_seconds: float
    ) -> TrialSpec:
        """One VM per rate, for `real_seconds` of wall time at `time_scale`."""
        duration = real_seconds * time_scale
        return cls(name, vms=len(rates), duration=duration, time_scale=time_scale, rates=rates)

    @property
    def real_duration(self) -> float:
        return self.duration / self.time_scale


@dataclass(frozen=True, slots=True)
class VmTiming:
    vm: int
    rate: float  # configured, ticks per simulated second
    time_scale: float
    rate_achieved: float | None  # from the VM's own `stop` line
    rate_fitted: float  # the same fit over the logged tick times, for a cross-check
    ticks: int
    behind: int  # ticks that ran a whole period or more late
    lateness: np.ndarray  # seconds, one per tick

    @property
    def error_pct(self) -> float:
        return error_pct(self.rate_achieved, self.rate)


@dataclass(slots=True)
class Memory:
    """Peak RSS of each VM process, and each container's memory as `docker stats` counts it."""

    rss_mb: dict[int, float] = field(default_factory=dict)
    container_mb: dict[int, float] = field(default_factory=dict)
    container_rss_mb: dict[int, float] = field(default_factory=dict)  # anonymous memory only


@dataclass(slots=True)
class TrialRun:
    spec: TrialSpec
    backend: str
    returncode: int
    run_dir: Path
    manifest: Manifest  # outcome None: the command wrote none
    command_started: float  # wall clock, just before the command was started
    exited: float  # wall clock, once the command had exited
    timings: list[VmTiming]
    memory: Memory
    command_cpu: CpuSampler  # the `clocklab up` process's own CPU
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.manifest.completed

    @property
    def first_tick_at(self) -> float | None:
        return self.manifest.first_tick_at

    @property
    def last_stop_at(self) -> float | None:
        stops = [(s or {}).get("timestamp") for s in self.manifest.vm_summaries.values()]
        found = [float(t) for t in stops if t is not None]
        return max(found) if found else None

    @property
    def start_to_first_tick(self) -> float | None:
        first = self.first_tick_at
        return first - self.command_started if first is not None else None

    @property
    def cpu_starting(self) -> float | None:
        """The command's CPU share from `compose up` done to the first tick."""
        return self.command_cpu.share(self.manifest.launched_at, self.first_tick_at)

    @property
    def cpu_running(self) -> float | None:
        """The command's CPU share from the first tick to the last `stop` line."""
        return self.command_cpu.share(self.first_tick_at, self.last_stop_at)

    @property
    def teardown(self) -> float | None:
        """From the last VM's `stop` line until the command has exited."""
        last = self.last_stop_at
        return self.exited - last if last is not None else None

    @property
    def worst_error_pct(self) -> float:
        errors = [abs(t.error_pct) for t in self.timings]
        return max(errors) if errors and len(self.timings) == self.spec.vms else float("nan")

    def lateness(self) -> np.ndarray:
        if not self.timings:
            return np.zeros(0)
        return np.concatenate([t.lateness for t in self.timings])


def run_trial(
    spec: TrialSpec,
    backend: str,
    root: Path,
    *,
    memory: bool = False,
    attempts: int = 2,
    context: str | None = None,
) -> TrialRun:
    """`clocklab up` for `spec` (on the engine of Docker context `context`, where given);
    a failed docker trial is run again once (another test's leak checker on this engine
    may have removed its containers)."""
    run: TrialRun | None = None
    for attempt in range(1, attempts + 1):
        run = _run_once(spec, backend, root, memory, context)
        run.attempts = attempt
        if run.ok or backend != "docker":
            break
        print(
            f"  {spec.name} on {backend} failed ({run.manifest.error}); running it again",
            file=sys.stderr,
        )
    assert run is not None
    return run


def _run_once(
    spec: TrialSpec, backend: str, root: Path, memory: bool, context: str | None
) -> TrialRun:
    root.mkdir(parents=True, exist_ok=True)
    experiment = root / f"{spec.name}.yaml"
    experiment.write_text(spec.to_yaml(), encoding="utf-8")
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--experiment", str(experiment)]
    command += ["--backend", backend, "--out", str(root / "runs")]
    if context is not None:
        command += ["--context", context]
    logs = root / "runs" / spec.name / "trial-1" / "logs"
    sampler = MemorySampler(
        f"{spec.name}-t1-", spec.name if backend == "docker" else None, ticking_in=logs
    )
    stderr_path = root / f"{spec.name}.{backend}.stderr"
    with stderr_path.open("wb") as stderr:
        started = time.time()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
        cpu = CpuSampler(proc.pid)
        cpu.start()
        if memory:
            sampler.start()
        try:
            code = proc.wait(timeout=spec.real_duration + TRIAL_TIMEOUT_SLACK)
        except subprocess.TimeoutExpired:
            proc.terminate()  # clocklab tears its trial down on SIGTERM
            code = proc.wait()
        exited = time.time()
    cpu.stop()
    if memory:
        sampler.stop()
    run_dir = RunDir(root / "runs" / spec.name / "trial-1")
    return TrialRun(
        spec=spec,
        backend=backend,
        returncode=code,
        run_dir=run_dir.path,
        manifest=run_dir.read_manifest(),
        command_started=started,
        exited=exited,
        timings=read_timings(run_dir),
        memory=sampler.memory,
        command_cpu=cpu,
    )


def read_timings(run_dir: RunDir) -> list[VmTiming]:
    """Per VM (first incarnation): rates and the lateness of every tick."""
    timings = []
    for _, incarnation, path in run_dir.log_files():
        if incarnation != 0:
            continue  # a restarted VM's later incarnation
        timing = _timing(read_records(path))
        if timing is not None:
            timings.append(timing)
    return sorted(timings, key=lambda t: t.vm)


def read_records(path: Path) -> list[dict[str, Any]]:
    """A VM log's lines as objects; a line cut short by a kill is left out (the checker
    quarantines it)."""
    found = []
    for line in path.read_bytes().splitlines():
        try:
            found.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return found


def _timing(records: list[dict[str, Any]]) -> VmTiming | None:
    config: dict[str, Any] | None = None
    start_at: float | None = None
    stop: dict[str, Any] | None = None
    ticks: list[int] = []
    times: list[float] = []
    behind = 0
    for record in records:
        if "tick" in record:
            ticks.append(record["tick"])
            times.append(record["timestamp"])
            behind += "behind_s" in record
        elif record["event"] == "start":
            config = record["config"]
        elif record["event"] == "ready" and start_at is None:
            start_at = record["start_at"]
        elif record["event"] == "stop":
            stop = record
    if config is None or start_at is None:
        return None
    rate, scale = float(config["rate"]), float(config["time_scale"])
    k = np.asarray(ticks, dtype=np.float64)
    lateness = np.asarray(times, dtype=np.float64) - (start_at + k / (rate * scale))
    achieved = stop.get("rate_achieved") if stop else None
    return VmTiming(
        vm=int(config["vm"]),
        rate=rate,
        time_scale=scale,
        rate_achieved=float(achieved) if achieved is not None else None,
        rate_fitted=fitted_rate(ticks, times) / scale,
        ticks=len(ticks),
        behind=behind,
        lateness=lateness,
    )


class MemorySampler(threading.Thread):
    """Every half second: the RSS of each `python -m vm_node` whose run id starts with
    `run_prefix` (found in /proc, for local processes and container processes alike);
    every few seconds, the memory of each container labelled with `experiment`, once
    a VM logging to `ticking_in` has ticked: the engine's stats calls would slow the
    start that the overhead benchmark times (its references run without them)."""

    INTERVAL = 0.5
    CONTAINER_EVERY = 4  # intervals (a one-shot stats call takes a few ms per container)

    def __init__(
        self,
        run_prefix: str,
        experiment: str | None,
        marker: bytes = b"-m\0vm_node",
        ticking_in: Path | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self._prefix = run_prefix.encode()
        self._experiment = experiment
        self._marker = marker
        self._ticking_in = ticking_in
        self._ticked = ticking_in is None
        self._stopped = threading.Event()
        self._pids: dict[int, int] = {}  # pid -> vm
        self._seen: set[int] = set()
        self.memory = Memory()

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def run(self) -> None:
        client = _docker() if self._experiment else None
        n = 0
        while not self._stopped.wait(self.INTERVAL):
            self._find_processes()
            for pid, vm in list(self._pids.items()):
                peak = peak_rss_mb(pid)
                if peak is None:
                    del self._pids[pid]
                    continue
                self.memory.rss_mb[vm] = max(self.memory.rss_mb.get(vm, 0.0), peak)
            if client is not None and self._has_ticked():
                if n % self.CONTAINER_EVERY == self.CONTAINER_EVERY - 1:
                    self.sample_containers(client)
                n += 1

    def _has_ticked(self) -> bool:
        if not self._ticked and self._ticking_in is not None:
            with contextlib.suppress(OSError):  # the trial may be replacing its directory
                logs = self._ticking_in.glob("vm*.jsonl")
                self._ticked = any(b'"tick":' in path.read_bytes() for path in logs)
        return self._ticked

    def sample_now(self, client: Any = None) -> Memory:
        """One sample, without the thread (for stacks that sit still)."""
        self._find_processes()
        for pid, vm in self._pids.items():
            rss = peak_rss_mb(pid)
            if rss is not None:
                self.memory.rss_mb[vm] = rss
        if client is not None:
            self.sample_containers(client)
        return self.memory

    def _find_processes(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in self._seen:
                continue
            pid = int(entry)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"python" not in cmdline.split(b"\0")[0] or self._marker not in cmdline:
                    continue  # not ours, or not yet: forked but not yet exec'd
                self._seen.add(pid)  # exec'd: its command and environment are final
                environ = dict(
                    item.split(b"=", 1)
                    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    if b"=" in item
                )
            except OSError:
                continue
            if environ.get(b"CLOCKLAB_RUN", b"").startswith(self._prefix):
                self._pids[pid] = int(environ[b"CLOCKLAB_VM"])

    def sample_containers(self, client: Any) -> None:
        label = f"clocklab.experiment={self._experiment}"
        try:
            containers = client.containers.list(filters={"label": label})
            for container in containers:
                vm = int(container.labels.get("clocklab.vm", -1))
                usage, rss = container_memory_mb(container.stats(stream=False, one_shot=True))
                if usage is None:
                    continue
                m = self.memory
                m.container_mb[vm] = max(m.container_mb.get(vm, 0.0), usage)
                m.container_rss_mb[vm] = max(m.container_rss_mb.get(vm, 0.0), rss or 0.0)
        except Exception as e:  # a container that went away between list and stats
            print(f"  (container stats: {e})", file=sys.stderr)


def container_memory_mb(stats: dict[str, Any]) -> tuple[float | None, float | None]:
    """(usage as `docker stats` shows it: usage minus inactive file cache, anonymous RSS)."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None, None
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    rss = detail.get("total_rss", detail.get("rss", detail.get("anon")))
    return (usage - inactive) / 2**20, (rss / 2**20 if rss is not None else None)


def peak_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _docker() -> Any:
    from orchestrator.engine import connect_from_env

    return connect_from_env().client
