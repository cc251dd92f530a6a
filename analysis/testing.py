"""A faithful simulation of a trial that writes the logs real VMs would write.

Tests and the benchmark use it where no real run is at hand: N VMs tick on
absolute schedules at their own rates, messages cross a network with a fixed
delay into the receiver's inbox, and each tick follows the rules of
the original exercise (one inbox message, else a seeded draw from 1..event_range).
Only the tick loop changes clocks; every other line repeats them.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from vm_node.rundir import Manifest, Outcome, RunDir
from vm_node.vocabulary import Event


@dataclass(frozen=True, slots=True)
class SyntheticRun:
    """What to simulate; `rates` are ticks per simulated second, one per VM."""

    rates: tuple[float, ...]
    duration: float = 60.0
    time_scale: float = 1.0
    event_range: int = 10
    seed: int = 0
    delay: float = 0.002  # wall seconds a message spends on the wire
    failure_rate: float = 0.0  # share of messages whose send fails
    loss_rate: float = 0.0  # share a loss condition drops (a `fault` line, no delivery)
    duplicate_rate: float = 0.0  # share a duplicate condition sends twice
    bad_frame_rate: float = 0.0  # chance per tick that a peer sends garbage
    experiment: str = "synthetic"
    trial: int = 1
    start_at: float = 1_700_000_000.0

    @classmethod
    def for_lines(cls, lines: int, rates: tuple[float, ...] = (1.0, 3.0, 6.0)) -> SyntheticRun:
        """A run whose logs hold about `lines` lines in all."""
        return cls(rates=rates, duration=lines / sum(rates), time_scale=1000.0)

    @property
    def run_id(self) -> str:
        return f"{self.experiment}-trial-{self.trial}-seed-{self.seed}"


@dataclass(frozen=True, slots=True)
class _Message:
    msg_id: str
    sender: int
    lamport: int
    vc: dict[str, int]


class _Vm:
    """One simulated VM: its clocks, inbox and log file."""

    def __init__(self, vm: int, spec: SyntheticRun, out: BinaryIO) -> None:
        self.vm = vm
        self.vms = len(spec.rates)
        self.peers = [j for j in range(self.vms) if j != vm]
        self.rng = random.Random(spec.seed * 1_000_003 + vm)
        self.out = out
        self.run = spec.run_id
        self.lamport = 0
        self.vector = [0] * self.vms
        self.inbox: deque[_Message] = deque()
        self.in_flight: deque[tuple[float, _Message]] = deque()
        self.seq = 0
        self.sent = self.received = self.dropped = self.bad_frames = self.ticks = 0
        self.ticks_planned = int(-(-spec.rates[vm] * spec.duration // 1))
        self.period = 1.0 / (spec.rates[vm] * spec.time_scale)

    def vc(self) -> dict[str, int]:
        return {str(j): n for j, n in enumerate(self.vector)}

    def write(self, event: Event, timestamp: float, **fields: Any) -> None:
        line = {
            "event": event.value,
            "timestamp": timestamp,
            "seq": self.seq,
            "run": self.run,
            "vm": self.vm,
            "incarnation": 0,
            "lamport": self.lamport,
            "vc": self.vc(),
            "queue_len": len(self.inbox),
            **fields,
        }
        self.out.write(orjson.dumps(line) + b"\n")
        self.seq += 1

    def deliver_until(self, now: float) -> None:
        while self.in_flight and self.in_flight[0][0] <= now:
            self.inbox.append(self.in_flight.popleft()[1])

    def step(self) -> None:
        self.lamport += 1
        self.vector[self.vm] += 1


def write_run(spec: SyntheticRun, runs_root: Path) -> Path:
    """Simulate `spec` and write `runs_root/<experiment>/trial-<n>/`; return that directory."""
    run_dir = RunDir(runs_root / spec.experiment / f"trial-{spec.trial}")
    run_dir.logs.mkdir(parents=True, exist_ok=True)
    files = [run_dir.log_path(i).open("wb", buffering=1 << 20) for i in range(len(spec.rates))]
    try:
        vms = [_Vm(i, spec, f) for i, f in enumerate(files)]
        _simulate(spec, vms)
    finally:
        for f in files:
            f.close()
    run_dir.write_manifest(
        Manifest(
            experiment=spec.experiment,
            trial=spec.trial,
            run=spec.run_id,
            seed=spec.seed,
            rates=spec.rates,
            vms=len(spec.rates),
            duration=spec.duration,
            time_scale=spec.time_scale,
            event_range=spec.event_range,
            backend="synthetic",
            outcome=Outcome.COMPLETED,
            started_at=spec.start_at,
        )
    )
    return run_dir.path


def _simulate(spec: SyntheticRun, vms: list[_Vm]) -> None:
    for vm in vms:
        config = {
            "vm": vm.vm,
            "vms": vm.vms,
            "rate": spec.rates[vm.vm],
            "time_scale": spec.time_scale,
            "duration": spec.duration,
            "event_range": spec.event_range,
            "seed": spec.seed,
            "port": 5000 + vm.vm,
            "peers": vm.peers,
            "start_at": None,
            "run": spec.run_id,
            "incarnation": 0,
        }
        vm.write(Event.START, spec.start_at - 1.0, config=config)
        vm.write(Event.READY, spec.start_at - 0.5, start_at=spec.start_at)
    heap = [(spec.start_at, vm.vm, 0) for vm in vms]
    heapq.heapify(heap)
    while heap:
        scheduled, i, tick = heapq.heappop(heap)
        vm = vms[i]
        now = scheduled + vm.rng.random() * vm.period * 0.1  # late, never out of order
        vm.deliver_until(now)
        _tick(spec, vms, vm, tick, now)
        if tick + 1 < vm.ticks_planned:
            heapq.heappush(heap, (spec.start_at + (tick + 1) * vm.period, i, tick + 1))
    end = spec.start_at + spec.duration / spec.time_scale + 0.1
    for vm in vms:  # every peer's bye has arrived: whatever is in flight is queued
        vm.deliver_until(float("inf"))
        vm.write(
            Event.STOP,
            end,
            ticks=vm.ticks,
            sent=vm.sent,
            received=vm.received,
            dropped=vm.dropped,
            bad_frames=vm.bad_frames,
            rate_configured=spec.rates[vm.vm],
            rate_achieved=vm.ticks / spec.duration,
            reason="completed",
        )


def _tick(spec: SyntheticRun, vms: list[_Vm], vm: _Vm, tick: int, now: float) -> None:
    vm.ticks += 1
    if vm.inbox:
        msg = vm.inbox.popleft()
        before = vm.lamport
        vm.lamport = max(vm.lamport, msg.lamport) + 1
        for key, value in msg.vc.items():
            j = int(key)
            vm.vector[j] = max(vm.vector[j], value)
        vm.vector[vm.vm] += 1
        vm.received += 1
        vm.write(
            Event.RECEIVE,
            now,
            tick=tick,
            **{"from": msg.sender},
            msg_id=msg.msg_id,
            msg_lamport=msg.lamport,
            jump=vm.lamport - before,
        )
    else:
        r = vm.rng.randint(1, spec.event_range)
        if r in (1, 2):
            targets = [vm.peers[r - 1]] if len(vm.peers) == 2 else [vm.rng.choice(vm.peers)]
        elif r == 3:
            targets = list(vm.peers)
        else:
            targets = []
        vm.step()
        if not targets:
            vm.write(Event.INTERNAL, now, tick=tick)
        else:
            _send(spec, vms, vm, targets, tick, now)
    if spec.bad_frame_rate and vm.rng.random() < spec.bad_frame_rate:
        vm.bad_frames += 1
        vm.write(Event.BAD_FRAME, now + 1e-6, reason="bad json", peer="127.0.0.1:40000")


def _send(
    spec: SyntheticRun, vms: list[_Vm], vm: _Vm, targets: list[int], tick: int, now: float
) -> None:
    msg_ids = [f"{vm.vm}-0-{vm.sent + n}" for n in range(1, len(targets) + 1)]
    vm.sent += len(targets)
    vm.write(Event.SEND, now, tick=tick, to=targets, msg_ids=msg_ids)
    for to, msg_id in zip(targets, msg_ids, strict=True):
        if spec.failure_rate and vm.rng.random() < spec.failure_rate:
            vm.dropped += 1
            vm.write(
                Event.SEND_FAILED, now + 1e-6, to=to, msg_id=msg_id, reason="connection refused"
            )
            continue
        if spec.loss_rate and vm.rng.random() < spec.loss_rate:
            vm.write(Event.FAULT, now + 1e-6, kind="loss", to=to, msg_id=msg_id)
            continue
        copies = 1
        if spec.duplicate_rate and vm.rng.random() < spec.duplicate_rate:
            vm.write(Event.FAULT, now + 1e-6, kind="duplicate", to=to, msg_id=msg_id)
            copies = 2
        msg = _Message(msg_id, vm.vm, vm.lamport, vm.vc())
        for _ in range(copies):
            vms[to].in_flight.append((now + spec.delay, msg))
