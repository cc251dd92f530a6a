"""7. Footprint: RSS and CPU of each VM at time scale 1, after start-up.

Three `python -m vm_node` processes (the original experiment's size, rates 1,
3 and 6 ticks/s) log to files on 127.0.0.1. psutil samples each process every
half second; RSS is its largest sample, CPU is the CPU time spent from its
`ready` line to its last tick over that wall time (start-up excluded), and
the rate error comes from its `stop` line.

References, in the same run: a bare interpreter's RSS and a bare asyncio loop
sleeping to the same absolute deadlines at 6 ticks/s (its CPU share).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.context import Context
from bench.report import Figure, Section, Target
from vm_node.ratefit import RateFit

NAME = "footprint"
TITLE = "Footprint of one VM at time scale 1: RSS and CPU after start-up"
RATES = (1.0, 3.0, 6.0)
SECONDS = {False: 60.0, True: 10.0}
TARGET_RSS_MB = 25.0
TARGET_CPU_PCT = 0.3
TARGET_RATE_ERROR_PCT = 0.001
SAMPLE_EVERY = 0.5
MB = 1024 * 1024  # MiB, as bench/memory.py counts them
BARE_LOOP = """
import asyncio, json, sys, time
async def main(rate, seconds):
    loop = asyncio.get_running_loop()
    origin, wall = loop.time() + 1.0, time.time() + 1.0
    times = []
    for k in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, origin + k / rate - loop.time()))
        times.append(time.time())
    print(json.dumps({"start_at": wall, "times": times}))
asyncio.run(main(float(sys.argv[1]), float(sys.argv[2])))
"""


@dataclass(frozen=True, slots=True)
class VmFootprint:
    vm: int
    rate: float
    rss_mb: float
    cpu_pct: float  # of one core, ready to last tick
    startup_cpu_s: float  # CPU seconds until ready
    rate_error_pct: float
    lateness_p99_ms: float  # tick time after its deadline (start_at + k / rate)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_vms(work: Path, seconds: float) -> list[VmFootprint]:
    logs = Path(tempfile.mkdtemp(prefix="footprint-", dir=work))
    ports = _free_ports(len(RATES))
    procs = []
    for vm, rate in enumerate(RATES):
        peers = ",".join(f"{j}=127.0.0.1:{p}" for j, p in enumerate(ports) if j != vm)
        settings: dict[str, object] = {"vm": vm, "vms": len(RATES), "rate": rate}
        settings |= {"duration": seconds}
        settings |= {"seed": vm + 1, "run": f"bench-footprint-{logs.name}", "host": "127.0.0.1"}
        settings |= {"port": ports[vm], "peers": peers, "log_dir": logs, "log_stream": "file"}
        # settings in the environment, as the backends give them
        env = os.environ | {f"CLOCKLAB_{k.upper()}": str(v) for k, v in settings.items()}
        argv = [sys.executable, "-m", "vm_node"]
        procs.append(psutil.Popen(argv, env=env, stdout=subprocess.DEVNULL))
    rss = [0.0] * len(procs)
    cpu_at_ready: list[float | None] = [None] * len(procs)
    cpu_last = [0.0] * len(procs)
    try:
        while any(p.poll() is None for p in procs):
            for i, proc in enumerate(procs):
                try:
                    rss[i] = max(rss[i], proc.memory_info().rss / MB)
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                cpu_last[i] = times.user + times.system
                if cpu_at_ready[i] is None and _has_line(logs / f"vm{i}.jsonl", b'"ready"'):
                    cpu_at_ready[i] = cpu_last[i]
            time.sleep(SAMPLE_EVERY)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return [_footprint(logs, i, rss[i], cpu_at_ready[i], cpu_last[i]) for i in range(len(procs))]


def _has_line(path: Path, marker: bytes) -> bool:
    return path.exists() and marker in path.read_bytes()


def _footprint(
    logs: Path, vm: int, rss_mb: float, cpu_ready: float | None, cpu_end: float
) -> VmFootprint:
    records = [orjson.loads(line) for line in (logs / f"vm{vm}.jsonl").read_bytes().splitlines()]
    ready = next(r for r in records if r["event"] == "ready")
    ticks = [r["timestamp"] for r in records if "tick" in r]
    stop = records[-1]
    if cpu_ready is None or stop["event"] != "stop":
        raise RuntimeError(f"vm{vm} never logged ready and stop: see {logs}")
    wall = ticks[-1] - ready["timestamp"]
    error = (stop["rate_achieved"] / stop["rate_configured"] - 1) * 100
    p99 = _lateness_p99_ms(ready["start_at"], RATES[vm], ticks)
    cpu_pct = (cpu_end - cpu_ready) / wall * 100
    return VmFootprint(vm, RATES[vm], rss_mb, cpu_pct, cpu_ready, abs(error), p99)


def bare_rss_mb() -> float:
    proc = psutil.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    time.sleep(1.0)  # an interpreter that has started and sits still
    rss = float(proc.memory_info().rss) / MB
    proc.wait()
    return rss


@dataclass(frozen=True, slots=True)
class BareLoop:
    cpu_pct: float
    rate_error_pct: float
    lateness_p99_ms: float


def bare_loop(seconds: float) -> BareLoop:
    """A bare asyncio deadline loop at the fastest VM's rate: its CPU after its first second,
    its rate error (fitted as the VMs' are) and its lateness."""
    rate = max(RATES)
    argv = [sys.executable, "-c", BARE_LOOP, str(rate), str(seconds)]
    proc = psutil.Popen(argv, stdout=subprocess.PIPE)
    time.sleep(1.0)  # past start-up
    times = proc.cpu_times()
    first, began = times.user + times.system, time.monotonic()
    last, ended = first, began
    while proc.poll() is None:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            break
        last, ended = times.user + times.system, time.monotonic()
        time.sleep(SAMPLE_EVERY)
    out, _ = proc.communicate()
    result = orjson.loads(out)
    fit = RateFit()
    for k, t in enumerate(result["times"]):
        fit.add(k, t)
    achieved = fit.ticks_per_second()
    error = abs(achieved / rate - 1) * 100 if achieved else math.nan
    late = _lateness_p99_ms(result["start_at"], rate, result["times"])
    return BareLoop((last - first) / max(1e-9, ended - began) * 100, error, late)


def _lateness_p99_ms(start_at: float, rate: float, times: list[float]) -> float:
    late = sorted(t - (start_at + k / rate) for k, t in enumerate(times))
    return late[min(len(late) - 1, round(0.99 * len(late)))] * 1000


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "VM",
            "rate",
            "RSS max (MB)",
            "CPU after ready (%)",
            "start-up CPU (s)",
            "rate error (%)",
            "lateness p99 (ms)",
        ),
    )
    seconds = SECONDS[ctx.quick]
    work = ctx.work / NAME
    work.mkdir(parents=True, exist_ok=True)
    print(f"  {len(RATES)} VMs at rates {RATES}, {seconds:g} s at time scale 1, log to file")
    vms = run_vms(work, seconds)
    for v in vms:
        section.add_row(
            f"vm{v.vm}",
            v.rate,
            v.rss_mb,
            v.cpu_pct,
            v.startup_cpu_s,
            v.rate_error_pct,
            v.lateness_p99_ms,
        )
    bare_rss, bare = bare_rss_mb(), bare_loop(seconds)
    section.add_row(
        "bare", max(RATES), bare_rss, bare.cpu_pct, "–", bare.rate_error_pct, bare.lateness_p99_ms
    )
    section.data = {
        "vms": [_as_dict(v) for v in vms],
        "bare_rss_mb": bare_rss,
        "bare_loop": {f: getattr(bare, f) for f in BareLoop.__slots__},
    }
    section.figures += [
        Figure(
            "3 local VMs at 1x: largest RSS",
            max(v.rss_mb for v in vms),
            "MB",
            reference=bare_rss,
            reference_name="bare Python interpreter",
            target=Target("at_most", TARGET_RSS_MB, "MB"),
        ),
        Figure(
            "3 local VMs at 1x: highest CPU after start-up",
            max(v.cpu_pct for v in vms),
            "%",
            reference=bare.cpu_pct,
            reference_name="bare asyncio deadline loop at 6/s",
            target=Target("at_most", TARGET_CPU_PCT, "%"),
        ),
        Figure(
            "3 local VMs at 1x: worst rate error",
            max(v.rate_error_pct for v in vms),
            "%",
            reference=bare.rate_error_pct,
            reference_name="bare asyncio deadline loop at 6/s",
            ratio_of="none",
            target=Target("at_most", TARGET_RATE_ERROR_PCT, "%"),
        ),
        Figure(
            "3 local VMs at 1x: worst tick lateness p99",
            max(v.lateness_p99_ms for v in vms),
            "ms",
            reference=bare.lateness_p99_ms,
            reference_name="bare asyncio deadline loop at 6/s",
        ),
    ]
    section.notes.append(
        "CPU is a share of one core from the VM's ready line to its last tick; the bare loop "
        "runs after the VMs, alone"
    )
    return section


def _as_dict(v: VmFootprint) -> dict[str, Any]:
    return {f: getattr(v, f) for f in VmFootprint.__slots__}
