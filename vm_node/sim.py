"""A trial in virtual time: the VMs' own cores on one deterministic clock.

Tests and the benchmark use it where no real run is at hand. Each VM is a
VmCore (vm_node.core) with the configuration a real VM of the trial would
get, writing through the VM's own EventLog, so its log holds the bytes a real
VM would write for the same events. A heap of events stands in for the wall
clock and the network: each VM ticks on its absolute schedule
start_at + k / (rate * time_scale), each tick a little late as real ones are,
and a message arrives a fixed delay after its send, plus what a delay
condition adds. Loss and duplication are the VMs' own link conditions;
refused sends and garbage from a peer come from the network side through the
core's inputs. A kill ends one VM's incarnation without a stop line: what it
sent that is still on the wire dies with it, as do messages on their way to
it, and its peers' sends to it are refused until it starts again. Every draw
comes from the spec's seed: the same spec gives the same bytes.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from vm_node.conditions import LinkCondition
from vm_node.config import NodeConfig
from vm_node.core import SendMessage, VmCore
from vm_node.errors import BadFrame
from vm_node.eventlog import EventLog
from vm_node.peerlink import NOT_CONNECTED
from vm_node.resume import Resume
from vm_node.rundir import Manifest, Outcome, RunDir
from vm_node.vocabulary import Message, VectorClock
from vm_node.wire import Codec

LATE = 0.1  # a tick runs up to this share of its period after its deadline
GARBLED = b'{"type": "msg", "run": '  # a line cut short: the bad frame a peer sends
# Events at one instant: what arrived is on the inbox before a tick looks at it.
_ARRIVAL, _GARBLED, _TICK, _KILL, _RESTART = 0, 1, 2, 3, 4


class Kill(msgspec.Struct, frozen=True, kw_only=True):
    """VM `vm` is killed `at` simulated seconds into the trial, and started again as a
    new incarnation `down_for` simulated seconds later (never, if None)."""

    vm: int
    at: float
    down_for: float | None = None


class SyntheticRun(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate; `rates` are ticks per simulated second, one per VM."""

    rates: tuple[float, ...]
    duration: float = 60.0
    time_scale: float = 1.0
    event_range: int = 10
    seed: int = 0
    delay: float = 0.002  # wall seconds a message spends on the wire
    failure_rate: float = 0.0  # share of messages whose link refuses them
    loss_rate: float = 0.0  # share a loss condition drops (a `fault` line, no delivery)
    duplicate_rate: float = 0.0  # share a duplicate condition sends twice
    bad_frame_rate: float = 0.0  # chance per tick that a peer sends a garbled line
    kill: Kill | None = None
    clock_offsets: tuple[float, ...] = ()  # seconds each VM adds to its timestamps; () for none
    experiment: str = "synthetic"
    trial: int = 1
    start_at: float = 1_700_000_000.0

    def __post_init__(self) -> None:
        """The network's own settings; each VM's are checked as a real VM checks them."""
        if not self.rates:
            raise ValueError("rates: give one rate per VM")
        if self.delay < 0:
            raise ValueError(f"delay={self.delay!r}: must be >= 0 seconds")
        for name in ("failure_rate", "loss_rate", "duplicate_rate", "bad_frame_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be in [0, 1]")
        if self.clock_offsets and len(self.clock_offsets) != len(self.rates):
            raise ValueError(
                f"clock_offsets={self.clock_offsets!r}: give one offset per VM ({len(self.rates)})"
            )
        for config in self.configs():
            config.validate()
        if self.kill is not None:
            kill = self.kill
            if not 0 <= kill.vm < len(self.rates):
                raise ValueError(f"kill.vm={kill.vm!r}: there are {len(self.rates)} VMs")
            if not 0 <= kill.at <= self.duration:
                raise ValueError(f"kill.at={kill.at!r}: must be in [0, duration={self.duration}]")
            if kill.down_for is not None and kill.down_for <= 0:
                raise ValueError(f"kill.down_for={kill.down_for!r}: must be > 0 seconds")

    @classmethod
    def for_lines(cls, lines: int, rates: tuple[float, ...] = (1.0, 3.0, 6.0)) -> SyntheticRun:
        """A run whose logs hold about `lines` lines in all."""
        return cls(rates=rates, duration=lines / sum(rates), time_scale=1000.0)

    @property
    def run_id(self) -> str:
        return f"{self.experiment}-trial-{self.trial}-seed-{self.seed}"

    @property
    def vm_seeds(self) -> tuple[int, ...]:
        return tuple(
            random.Random(f"{self.seed}:vm{i}").getrandbits(52) for i in range(len(self.rates))
        )

    def configs(self) -> list[NodeConfig]:
        """Each VM's configuration, as a real VM of this trial would be given it."""
        links = tuple(
            LinkCondition(kind, 0.0, None, None, probability=p)
            for kind, p in (("loss", self.loss_rate), ("duplicate", self.duplicate_rate))
            if p
        )
        return [
            NodeConfig(
                vm=i,
                vms=len(self.rates),
                rate=rate,
                event_range=self.event_range,
                duration=self.duration,
                time_scale=self.time_scale,
                seed=seed,
                run=self.run_id,
                links=links,
                clock_offset=self.clock_offsets[i] if self.clock_offsets else 0.0,
            )
            for i, (rate, seed) in enumerate(zip(self.rates, self.vm_seeds, strict=True))
        ]


def write_run(spec: SyntheticRun, runs_root: Path) -> Path:
    """Simulate `spec` and write `runs_root/<experiment>/trial-<n>/`; return that directory."""
    run_dir = RunDir(runs_root / spec.experiment / f"trial-{spec.trial}")
    run_dir.logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as open_logs:

        def open_log(vm: int, incarnation: int) -> EventLog:
            log = EventLog(_FileSink(run_dir.log_path(vm, incarnation)))
            open_logs.callback(log.close)
            return log

        Simulation(spec, open_log).run()
    run_dir.write_manifest(
        Manifest(
            experiment=spec.experiment,
            trial=spec.trial,
            run=spec.run_id,
            seed=spec.seed,
            rates=spec.rates,
            vm_seeds=spec.vm_seeds,
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


class Simulation:
    """The VMs of one trial and the network between them, run to the end in virtual time."""

    def __init__(self, spec: SyntheticRun, open_log: Callable[[int, int], EventLog]) -> None:
        self._spec = spec
        self._configs = spec.configs()
        self._open_log = open_log  # (vm, incarnation) -> that incarnation's log
        self._rng = random.Random(f"{spec.seed}:network")  # lateness, refusals, garbled lines
        # (time, what, serial, vm, payload), in time order; at one instant by `what`,
        # then in the order they were pushed: the heap never compares two payloads.
        self._events: list[tuple[float, int, int, int, object]] = []
        self._serial = itertools.count()
        self._dead: set[int] = set()  # VMs killed and not started again
        self.now = spec.start_at
        self.cores = [self._core(config.vm, 0) for config in self._configs]
        self._codecs = [Codec(c.run, c.vm, c.vms) for c in self._configs]

    def run(self) -> None:
        """Start every VM, run every tick and arrival in time order, then stop them."""
        spec = self._spec
        for config, core in zip(self._configs, self.cores, strict=True):
            core.start(config.listen_port, spec.start_at - 1.0)
            core.ready(spec.start_at, spec.start_at - 0.5)
            self._schedule_tick(config.vm, 0)
        if spec.kill is not None:
            kill = spec.kill
            self._push(spec.start_at + kill.at / spec.time_scale, _KILL, kill.vm, kill)
        events = self._events
        while events:
            self.now, what, _, vm, payload = heapq.heappop(events)
            if what == _ARRIVAL:
                assert isinstance(payload, Message)
                self.cores[vm].arrive(payload)
            elif what == _TICK:
                assert isinstance(payload, int)
                self._tick(vm, payload)
            elif what == _GARBLED:
                assert isinstance(payload, int)
                self._garbled(vm, payload)
            elif what == _KILL:
                assert isinstance(payload, Kill)
                self._kill(payload)
            else:
                self._restart(vm)
        # Every peer's bye has come, after everything it sent: the VMs stop.
        end = max(spec.start_at + spec.duration / spec.time_scale + 0.1, self.now)
        for vm, core in enumerate(self.cores):
            if vm not in self._dead:
                core.stop("completed", 0, [], end)

    def _core(self, vm: int, incarnation: int, resume: Resume | None = None) -> VmCore:
        config = self._configs[vm]
        log = self._open_log(vm, incarnation)
        return VmCore(config, incarnation, log.write, self._link_from(vm), resume)

    def _kill(self, kill: Kill) -> None:
        """The VM's core is no longer driven: its log ends at its last line, and every
        message to or from it still on the wire is gone."""
        self._dead.add(kill.vm)
        self._events[:] = [e for e in self._events if not _dies_with(kill.vm, e)]
        heapq.heapify(self._events)
        if kill.down_for is not None:
            self._push(self.now + kill.down_for / self._spec.time_scale, _RESTART, kill.vm, None)

    def _restart(self, vm: int) -> None:
        """A new incarnation, resuming from the clocks its predecessor last logged."""
        config, old = self._configs[vm], self.cores[vm]
        resume = Resume(old.clocks.lamport, old.clocks.vector, old.start_at)
        core = self.cores[vm] = self._core(vm, old.incarnation + 1, resume)
        self._dead.discard(vm)
        core.start(config.listen_port, self.now)
        core.ready(old.start_at, self.now, resumed=True)
        first = max(0, math.ceil((self.now - old.start_at) / config.tick_period))
        if first < config.total_ticks:
            self._schedule_tick(vm, first)

    def _tick(self, vm: int, k: int) -> None:
        config = self._configs[vm]
        deadline = self._spec.start_at + k * config.tick_period
        self.cores[vm].tick(k, self.now, self.now - deadline)
        rate = self._spec.bad_frame_rate
        if rate and config.peer_ids and self._rng.random() < rate:
            peer = self._rng.choice(config.peer_ids)
            if peer not in self._dead:
                self._push(self.now + self._spec.delay, _GARBLED, vm, peer)
        if k + 1 < config.total_ticks:
            self._schedule_tick(vm, k + 1)

    def _schedule_tick(self, vm: int, k: int) -> None:
        period = self._configs[vm].tick_period
        late = self._rng.random() * period * LATE
        self._push(self._spec.start_at + k * period + late, _TICK, vm, k)

    def _garbled(self, vm: int, sender: int) -> None:
        """A garbled line on `sender`'s connection, refused by the VM's codec as a real one is."""
        reason = _refusal(self._codecs[vm], GARBLED)
        peer = f"127.0.0.1:{40000 + sender}"  # the far end of the sender's connection
        self.cores[vm].bad_frame(reason, peer, sender, self.now)

    def _link_from(self, vm: int) -> SendMessage:
        """What VM `vm` sends into: its links to every peer."""
        spec, run = self._spec, self._configs[vm].run

        def send(
            to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
        ) -> None:
            refused = to in self._dead  # nothing listens on a killed VM's port
            if refused or (spec.failure_rate and self._rng.random() < spec.failure_rate):
                for _ in delays:  # the link is down: every copy is refused
                    self.cores[vm].send_failed(to, msg_id, NOT_CONNECTED, self.now)
                return
            msg = Message(run, vm, to, msg_id, lamport, vc)
            for delay in delays:
                self._push(self.now + spec.delay + delay / spec.time_scale, _ARRIVAL, to, msg)

        return send

    def _push(self, at: float, what: int, vm: int, payload: object) -> None:
        heapq.heappush(self._events, (at, what, next(self._serial), vm, payload))


def _dies_with(vm: int, event: tuple[float, int, int, int, object]) -> bool:
    """Whether a pending event is gone once `vm` is killed: its own ticks, whatever is on
    its way to it, and what it sent that has not arrived: a killed container's network
    stack goes with it, and so do the bytes in its socket buffers."""
    _, what, _, to, payload = event
    if to == vm:
        return True
    if what == _ARRIVAL:
        assert isinstance(payload, Message)
        return payload.sender == vm
    return what == _GARBLED and payload == vm


def _refusal(codec: Codec, line: bytes) -> str:
    """Why `codec` refuses `line`."""
    try:
        codec.decode(line)
    except BadFrame as e:
        return str(e)
    raise ValueError(f"{line!r} decodes as a frame")


class _FileSink:
    """Lines into a buffered file: in virtual time no VM is killed mid-line."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb", buffering=1 << 20)

    def msg(self, line: bytes | bytearray) -> None:
        self._file.write(line)

    def close(self) -> None:
        self._file.close()
