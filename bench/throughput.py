"""2. Event throughput: how many logged events per second one VM manages with no rate limit.

A real `python -m vm_node` (vm0 of 3) is told to tick far faster than it can
(every tick is behind, so the tick loop runs them back to back), with logging
on, as in every trial. Its two peers are bench.probe sinks: they join the
start barrier, acknowledge its messages (once per read) and answer the bye, so
the VM does a VM's work (ticks, clocks, log lines, sends and their acks; the
sinks send nothing, so there are no receives) and the peers cost as little as
possible. Throughput is tick lines over the time from the first tick to the
last; the full run reports the median of three.

Each run logs to one stream, as a backend collects it: the file (local and
Compose backends) or stdout, read through a pipe as the engine reads a
container's (Swarm).

Reference, in the same run: the same log lines written with one raw
`os.write` each to a file in the same directory (the floor of "one
unbuffered write per line").
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import orjson

from bench.context import Context
from bench.report import Figure, Section, Target

NAME = "throughput"
TITLE = "Event throughput of one VM, no rate limit, logging on"
TICKS = {False: 200_000, True: 30_000}
REPEATS = {False: 3, True: 1}  # the median run is reported: this machine is noisy
TARGET_EVENTS_PER_S = 100_000


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


STREAMS = ("file", "stdout")


def run_vm(work: Path, ticks: int, stream: str) -> dict[str, Any]:
    """vm0 with `ticks` ticks all due at once, its peers two sinks; what its log shows."""
    work.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix=f"{stream}-", dir=work))  # a first run
    run = f"bench-throughput-t1-{logs.name}"
    ports = free_ports(3)
    peers = ",".join(f"{j}=127.0.0.1:{ports[j]}" for j in (1, 2))
    # Every tick due within one millisecond: the loop can only run them back to back.
    settings = {
        "vm": 0,
        "vms": 3,
        "rate": ticks * 1000,
        "duration": 0.001,
        "seed": 1,
        "run": run,
        "host": "127.0.0.1",
        "port": ports[0],
        "peers": peers,
        "log-dir": logs,
        "log-stream": stream,
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sinks = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.probe",
                    "sink",
                    "--run",
                    run,
                    "--vm",
                    str(j),
                    *f"--vms 3 --port {ports[j]} --target-port {ports[0]}".split(),
                ],
                stdout=subprocess.PIPE,
            )
            for j in (1, 2)
        ]
        procs += sinks
        vm = subprocess.Popen(
            [sys.executable, "-m", "vm_node", *(f"--{k}={v}" for k, v in settings.items())],
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
        )
        procs.append(vm)
        path = logs / "vm0.jsonl"
        if stream == "stdout":  # read as the engine reads a container's stdout
            assert vm.stdout is not None
            drainer = threading.Thread(target=_drain, args=(vm.stdout, path), daemon=True)
            drainer.start()
        code = vm.wait(timeout=600)
        if stream == "stdout":
            drainer.join()
        received = [orjson.loads(s.communicate(timeout=30)[0])["messages"] for s in sinks]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        raise RuntimeError(f"vm_node exited {code}")
    lines = path.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    tick_lines = [line for line, r in zip(lines, records, strict=True) if "tick" in r]
    times = [r["timestamp"] for r in records if "tick" in r]
    seconds = times[-1] - times[0]
    events = Counter(r["event"] for r in records if "tick" in r)
    stop = records[-1]
    result = {
        "stream": stream,
        "ticks": len(times),
        "seconds": seconds,
        "events_per_s": (len(times) - 1) / seconds,
        "events": dict(events),
        "bytes_per_line": sum(map(len, tick_lines)) / len(tick_lines) + 1,
        "sent": stop.get("sent"),
        "received_by_sinks": sum(received),
        "unacked": stop.get("unacked"),
        "raw_write_lines_per_s": raw_writes(tick_lines, logs / "raw.jsonl"),
    }
    shutil.rmtree(logs)  # a few hundred MB over all runs
    return result


def _drain(stream: IO[bytes], path: Path) -> None:
    with path.open("wb") as out:
        while chunk := stream.read(1 << 16):
            out.write(chunk)


def raw_writes(lines: list[bytes], path: Path) -> float:
    """Lines per second: each line written with one os.write, as the VM's log does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.perf_counter()
        for line in lines:
            os.write(fd, line + b"\n")
        seconds = time.perf_counter() - started
    finally:
        os.close(fd)
    return len(lines) / seconds


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "log to",
            "ticks",
            "seconds",
            "events/s",
            "internal / send / receive",
            "bytes/line",
            "raw os.write lines/s",
            "ratio",
        ),
    )
    ticks, repeats = TICKS[ctx.quick], REPEATS[ctx.quick]
    results = {}
    for stream in STREAMS:
        print(f"  vm0 with {ticks:,} ticks due at once, log to {stream}, {repeats} run(s)")
        runs = sorted(
            (run_vm(ctx.work / NAME, ticks, stream) for _ in range(repeats)),
            key=lambda r: float(r["events_per_s"]),
        )
        r = runs[len(runs) // 2] | {"all_events_per_s": [x["events_per_s"] for x in runs]}
        results[stream] = r
        e = r["events"]
        section.add_row(
            "stdout (pipe)" if stream == "stdout" else "file",
            f"{r['ticks']:,} × {repeats}" if repeats > 1 else r["ticks"],
            r["seconds"],
            r["events_per_s"],
            f"{e.get('internal', 0):,} / {e.get('send', 0):,} / {e.get('receive', 0):,}",
            r["bytes_per_line"],
            r["raw_write_lines_per_s"],
            f"{r['events_per_s'] / r['raw_write_lines_per_s']:.2f}",
        )
    section.data = results
    for key, label in (
        ("file", "file (local and Compose)"),
        ("stdout", "stdout through a pipe (Swarm)"),
    ):
        r = results[key]
        section.figures.append(
            Figure(
                f"one VM, logged events/s, log to {label}",
                r["events_per_s"],
                "events/s",
                reference=r["raw_write_lines_per_s"],
                reference_name="raw os.write of the same lines",
                target=Target("at_least", TARGET_EVENTS_PER_S, "events/s"),
            )
        )
    section.notes.append(
        "every tick is behind schedule, so the loop runs them back to back (each still yields "
        "to the event loop once, to let readers in); the peers are bench.probe sinks; "
        + (f"the median of {repeats} runs" if repeats > 1 else "one run")
    )
    return section
