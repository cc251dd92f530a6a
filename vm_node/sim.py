"""A trial in virtual time: the VMs' own cores on one deterministic clock.

Tests, the benchmark and `--backend sim` use it. Each VM is a VmCore
(vm_node.core) with the configuration a real VM of the trial would get,
writing through the VM's own EventLog, so its log holds the bytes a real VM
would write for the same events. A heap of events stands in for the wall
clock and the network: each VM ticks on its absolute schedule
start_at + k / (rate * time_scale), each tick a little late as real ones are,
and a message arrives a fixed delay after its send, plus what a delay
condition adds. Loss and duplication are the VMs' own link conditions;
refused sends and garbage from a peer come from the network side through the
core's inputs. Every draw comes from the seed: the same trial gives the same
bytes.

Faults act on the VMs and on the links between them as they act on real ones
(vm_node.peerlink): a link whose peer stops answering is declared down after
its silence, its unacknowledged messages reported undelivered, sends on it
refused until it is up again.

- A kill ends one VM's incarnation without a stop line: what it sent that is
  still on the wire dies with it, as do messages on their way to it; its
  peers see their connections end at once, and reconnect when it is started
  again as a new incarnation.
- A pause freezes a VM: no ticks, and what peers send waits in its socket
  buffers, unacknowledged, so that a pause longer than a link's patience takes
  the links to it down. On unpause it reads what waited, then runs its missed
  ticks back to back, as a real VM behind its schedule does.
- A cut (a partition) silences every link between VMs on different sides:
  what crosses it waits, and the links go down after their silence, taking it
  with them, and come back once the cut heals; a link that heals before its
  silence ends delivers what waited.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

import msgspec

from vm_node.conditions import LinkCondition
from vm_node.config import NodeConfig
from vm_node.core import SendMessage, VmCore
from vm_node.errors import BadFrame
from vm_node.eventlog import EventLog
from vm_node.peerlink import BACKOFF_CAP, BACKOFF_FIRST, DEAD_AFTER, NOT_CONNECTED
from vm_node.resume import Resume
from vm_node.rundir import Manifest, Outcome, RunDir
from vm_node.vocabulary import Message, VectorClock
from vm_node.wire import Codec

LATE = 0.1  # a tick runs up to this share of its period after its deadline
GARBLED = b'{"type": "msg", "run": '  # a line cut short: the bad frame a peer sends
KILL_NOTICE = 0.06  # wall seconds until a killed VM's peers see their connections end
CONNECT = 0.005  # wall seconds for a started VM's links to connect
SILENCE = f"no answer for {DEAD_AFTER:g} s"  # why a link that falls silent goes down
CLOSED = "connection closed by peer"  # why a link to a killed VM goes down
# Events at one instant: what arrived is on the inbox before a tick looks at it, and a
# fault comes after the tick due then.
_ARRIVAL, _GARBLED, _LINK_DOWN, _LINK_UP, _TICK, _FAULT_BEGIN, _FAULT_END = range(7)

Link: TypeAlias = tuple[int, int]  # (sender, receiver): the sender's link to the receiver
Tamper: TypeAlias = Callable[[Message], Message]  # what the wire does to a message
OpenLog: TypeAlias = Callable[[int, int], EventLog]  # (vm, incarnation) -> its log


class Kill(msgspec.Struct, frozen=True, kw_only=True):
    """VM `vm` is killed `at` simulated seconds into the trial, and started again as a
    new incarnation `down_for` simulated seconds later (never, if None)."""

    vm: int
    at: float
    down_for: float | None = None


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """VM `vm` is frozen from `at` for `duration` simulated seconds."""

    vm: int
    at: float
    duration: float


class Cut(msgspec.Struct, frozen=True, kw_only=True):
    """The network splits into `groups` from `at` for `duration` simulated seconds; a VM
    in no group stays with the largest."""

    groups: tuple[tuple[int, ...], ...]
    at: float
    duration: float

    def sides(self, vms: int) -> list[int]:
        """Each VM's side: the index of its group."""
        largest = max(range(len(self.groups)), key=lambda g: len(self.groups[g]))
        side = [largest] * vms
        for g, group in enumerate(self.groups):
            for vm in group:
                side[vm] = g
        return side


Fault: TypeAlias = Kill | Pause | Cut


class Wire(msgspec.Struct, frozen=True):
    """The network between the VMs, beyond what their own link conditions do."""

    delay: float = 0.002  # wall seconds a message spends on the wire
    failure_rate: float = 0.0  # share of messages whose link refuses them
    bad_frame_rate: float = 0.0  # chance per tick that a peer sends a garbled line


PLAIN = Wire()  # a message takes its delay, and nothing else happens to it


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
    clock_offsets: tuple[float, ...] = ()  # seconds each VM's clock is ahead (`skew:`), or none
    experiment: str = "synthetic"
    trial: int = 1
    start_at: float = 1_700_000_000.0

    def __post_init__(self) -> None:
        """The network's own settings; each VM's are checked as a real VM checks them."""
        if not self.rates:
            raise ValueError("rates: give one rate per VM")
        if self.clock_offsets and len(self.clock_offsets) != len(self.rates):
            raise ValueError(
                f"clock_offsets: {len(self.clock_offsets)} given for {len(self.rates)} VMs; "
                "give one per VM, or none"
            )
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
        offsets = self.clock_offsets or (0.0,) * len(self.rates)
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
                clock_offset=offset,
            )
            for i, (rate, seed, offset) in enumerate(
                zip(self.rates, self.vm_seeds, offsets, strict=True)
            )
        ]

    def simulation(self, open_log: OpenLog) -> Simulation:
        wire = Wire(self.delay, self.failure_rate, self.bad_frame_rate)
        faults = () if self.kill is None else (self.kill,)
        return Simulation(self.configs(), self.start_at, open_log, self.seed, wire, faults)


def simulate(make: Callable[[OpenLog], Simulation], run_dir: RunDir) -> Simulation:
    """Run the simulation `make` gives, its VMs writing their logs into `run_dir`."""
    run_dir.logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as open_logs:

        def open_log(vm: int, incarnation: int) -> EventLog:
            log = EventLog(_FileSink(run_dir.log_path(vm, incarnation)))
            open_logs.callback(log.close)
            return log

        sim = make(open_log)
        sim.run()
    return sim


def write_run(spec: SyntheticRun, runs_root: Path) -> Path:
    """Simulate `spec` and write `runs_root/<experiment>/trial-<n>/`; return that directory."""
    run_dir = RunDir(runs_root / spec.experiment / f"trial-{spec.trial}")
    simulate(spec.simulation, run_dir)
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

    def __init__(
        self,
        configs: Sequence[NodeConfig],
        start_at: float,
        open_log: OpenLog,
        seed: int | str,
        wire: Wire = PLAIN,
        faults: Sequence[Fault] = (),
        tamper: Tamper | None = None,
        tick_late: float | None = None,
    ) -> None:
        """`start_at`: the agreed start (Unix seconds of the virtual clock); `faults` in
        simulated seconds after it; `tamper`: a faulty network that alters messages;
        `tick_late`: wall seconds a tick runs after its deadline at most (None: LATE of
        its period)."""
        self._configs = list(configs)
        self._vms = len(self._configs)
        self._start_at = start_at
        self._time_scale = self._configs[0].time_scale
        self._open_log = open_log  # (vm, incarnation) -> that incarnation's log
        self._wire = wire
        self._faults = tuple(faults)
        self._tamper = tamper
        self._tick_late = tick_late
        self._rng = random.Random(f"{seed}:network")  # lateness, refusals, reconnects
        # (time, what, serial, vm, payload), in time order; at one instant by `what`,
        # then in the order they were pushed: the heap never compares two payloads.
        self._events: list[tuple[float, int, int, int, object]] = []
        self._serial = itertools.count()
        self._dead: set[int] = set()  # VMs killed and not started again
        self._frozen: dict[int, list[Message]] = {}  # paused VMs: what waits in their buffers
        self._next_tick: dict[int, int] = {}  # a paused VM's first tick not yet run
        self._sides: list[int] | None = None  # each VM's side of the cut in force
        self._silent: dict[Link, list[str]] = {}  # links with no answer: what went unacked
        self._down: set[Link] = set()  # links declared down: sends on them are refused
        # What a cut holds back on a link not yet declared down: the connection lives on,
        # and TCP delivers it once the cut heals.
        self._stalled: dict[Link, list[Message]] = {}
        self.now = start_at
        self.cores = [self._core(config.vm, 0) for config in self._configs]
        self._codecs = [Codec(c.run, c.vm, c.vms) for c in self._configs]

    def run(self) -> None:
        """Start every VM, run every event in time order, then stop them."""
        start_at = self._start_at
        for config, core in zip(self._configs, self.cores, strict=True):
            core.start(config.listen_port, start_at - 1.0)
            for peer in config.peer_ids:  # linked to every peer before the barrier
                core.peer_up(peer, start_at - 0.75)
            core.ready(start_at, start_at - 0.5)
            self._schedule_tick(config.vm, 0)
        for fault in self._faults:
            self._push(self._at(fault.at), _FAULT_BEGIN, -1, fault)
            length = fault.down_for if isinstance(fault, Kill) else fault.duration
            if length is not None:
                self._push(self._at(fault.at + length), _FAULT_END, -1, fault)
        events = self._events
        while events:
            self.now, what, _, vm, payload = heapq.heappop(events)
            if what == _ARRIVAL:
                assert isinstance(payload, Message)
                self._arrive(vm, payload)
            elif what == _TICK:
                assert isinstance(payload, int)
                self._tick(vm, payload)
            elif what == _GARBLED:
                assert isinstance(payload, int)
                self._garbled(vm, payload)
            elif what in (_LINK_DOWN, _LINK_UP):
                assert isinstance(payload, tuple)
                self._link_down(payload) if what == _LINK_DOWN else self._link_up(payload)
            else:
                assert isinstance(payload, Kill | Pause | Cut)
                self._begin(payload) if what == _FAULT_BEGIN else self._end(payload)
        # Every peer's bye has come, after everything it sent: the VMs stop.
        end = max(start_at + self._configs[0].duration / self._time_scale + 0.1, self.now)
        for vm, core in enumerate(self.cores):
            if vm not in self._dead:
                peers = self._configs[vm].peer_ids
                unheard = [j for j in peers if (j, vm) in self._down or j in self._dead]
                unacked = sum(len(self._silent.get((vm, j), ())) for j in peers)
                core.stop("completed", unacked, unheard, end)

    def _at(self, simulated: float) -> float:
        """The virtual clock `simulated` seconds into the trial."""
        return self._start_at + simulated / self._time_scale

    def _core(self, vm: int, incarnation: int, resume: Resume | None = None) -> VmCore:
        config = self._configs[vm]
        log = self._open_log(vm, incarnation)
        return VmCore(config, incarnation, log.write, self._link_from(vm), resume)

    # --- faults ---

    def _begin(self, fault: Fault) -> None:
        match fault:
            case Kill():
                self._kill(fault.vm)
            case Pause():
                self._pause(fault.vm)
            case Cut():
                self._split(fault)

    def _end(self, fault: Fault) -> None:
        match fault:
            case Kill():
                self._restart(fault.vm)
            case Pause():
                self._unpause(fault.vm)
            case Cut():
                self._heal()

    def _kill(self, vm: int) -> None:
        """The VM's core is no longer driven: its log ends at its last line, and every
        message to or from it still on the wire is gone. Its peers' links to it end."""
        self._dead.add(vm)
        gone = [e for e in self._events if _dies_with(vm, e)]
        self._events[:] = [e for e in self._events if not _dies_with(vm, e)]
        heapq.heapify(self._events)
        for peer in self._configs[vm].peer_ids:
            self._silence((peer, vm), CLOSED, KILL_NOTICE)
            self._down.discard((vm, peer))  # its own links die with it, unlogged
            self._silent.pop((vm, peer), None)
        for _, what, _, to, payload in gone:
            if what == _ARRIVAL and to == vm:  # unacknowledged: its sender will say so
                assert isinstance(payload, Message)
                self._unanswered((payload.sender, vm), payload.msg_id)

    def _restart(self, vm: int) -> None:
        """A new incarnation, resuming from the clocks its predecessor last logged; its
        links and its peers' links to it connect once it listens."""
        config, old = self._configs[vm], self.cores[vm]
        resume = Resume(old.clocks.lamport, old.clocks.vector, old.start_at)
        core = self.cores[vm] = self._core(vm, old.incarnation + 1, resume)
        self._dead.discard(vm)
        core.start(config.listen_port, self.now)
        core.ready(old.start_at, self.now, resumed=True)
        for peer in config.peer_ids:
            self._down.add((vm, peer))
            self._push(self.now + CONNECT, _LINK_UP, vm, (vm, peer))
            if (peer, vm) in self._down:
                self._push(self.now + CONNECT, _LINK_UP, peer, (peer, vm))
        first = max(0, math.ceil((self.now - old.start_at) / config.tick_period))
        if first < config.total_ticks:
            self._schedule_tick(vm, first)

    def _pause(self, vm: int) -> None:
        """No more ticks; what arrives waits, unacknowledged, in the VM's buffers."""
        self._frozen[vm] = []
        tick = next((e for e in self._events if e[1] == _TICK and e[3] == vm), None)
        if tick is not None:
            self._events.remove(tick)
            heapq.heapify(self._events)
            assert isinstance(tick[4], int)
            self._next_tick[vm] = tick[4]
        for peer in self._configs[vm].peer_ids:
            self._silence((peer, vm), SILENCE, DEAD_AFTER)

    def _unpause(self, vm: int) -> None:
        """The VM reads what waited, its peers' links hear it again, and it runs the ticks
        it missed back to back."""
        for msg in self._frozen.pop(vm):
            self.cores[vm].arrive(msg)
        for peer in self._configs[vm].peer_ids:
            self._silent.pop((peer, vm), None)  # acknowledged at last, if not yet down
            self._reconnect((peer, vm))
        if (k := self._next_tick.pop(vm, None)) is not None:
            self._push(self.now, _TICK, vm, k)

    def _split(self, cut: Cut) -> None:
        """Every link across the cut falls silent; what is on its way across waits."""
        self._sides = cut.sides(self._vms)
        for link in self._links_across():
            self._silence(link, SILENCE, DEAD_AFTER)
        kept = []
        for event in self._events:
            _, what, _, to, msg = event
            if what == _ARRIVAL and isinstance(msg, Message) and self._across(msg.sender, to):
                self._unanswered((msg.sender, to), msg.msg_id)
                self._stalled.setdefault((msg.sender, to), []).append(msg)
            else:
                kept.append(event)
        self._events[:] = kept
        heapq.heapify(self._events)

    def _heal(self) -> None:
        """A link across the cut not yet declared down delivers what the cut held back and
        hears its acknowledgements; one that is down reconnects."""
        across = self._links_across()
        self._sides = None
        for link in across:
            stalled = self._stalled.pop(link, [])
            if self._silent.pop(link, None) is not None:
                for msg in stalled:
                    self._push(self.now + self._wire.delay, _ARRIVAL, link[1], msg)
            self._reconnect(link)

    def _across(self, a: int, b: int) -> bool:
        """Whether a cut in force separates VMs `a` and `b`."""
        return self._sides is not None and self._sides[a] != self._sides[b]

    def _links_across(self) -> list[Link]:
        vms = range(self._vms)
        return [(a, b) for a in vms for b in vms if a != b and self._across(a, b)]

    # --- links ---

    def _silence(self, link: Link, reason: str, after: float) -> None:
        """The link hears nothing more: after `after` wall seconds it is declared down."""
        if link in self._down or link in self._silent:
            return
        self._silent[link] = []
        self._push(self.now + after, _LINK_DOWN, link[0], (*link, reason))

    def _unanswered(self, link: Link, msg_id: str) -> None:
        """A message sent on a silent link: its sender reports it when the link goes down."""
        if (unanswered := self._silent.get(link)) is not None:
            unanswered.append(msg_id)

    def _link_down(self, event: tuple[object, ...]) -> None:
        sender, receiver, reason = event
        assert isinstance(sender, int) and isinstance(receiver, int) and isinstance(reason, str)
        link = (sender, receiver)
        if link not in self._silent or sender in self._dead:  # answered meanwhile
            return
        undelivered = self._silent.pop(link)
        self._stalled.pop(link, None)  # the connection is closed: its bytes go with it
        self._down.add(link)
        self.cores[sender].peer_down(receiver, reason, undelivered, self.now)
        if not self._blocked(link):
            self._reconnect(link)

    def _reconnect(self, link: Link) -> None:
        """A link that is down connects again after its backoff, once nothing blocks it."""
        if link in self._down and not self._blocked(link):
            backoff = self._rng.uniform(BACKOFF_FIRST, BACKOFF_CAP)
            self._push(self.now + backoff, _LINK_UP, link[0], link)

    def _link_up(self, link: tuple[object, ...]) -> None:
        sender, receiver = link
        assert isinstance(sender, int) and isinstance(receiver, int)
        if (sender, receiver) not in self._down or self._blocked((sender, receiver)):
            return
        self._down.discard((sender, receiver))
        self.cores[sender].peer_up(receiver, self.now)

    def _blocked(self, link: Link) -> bool:
        """Whether the link cannot connect now: an end killed or frozen, or a cut between."""
        a, b = link
        if a in self._dead or b in self._dead or a in self._frozen or b in self._frozen:
            return True
        return self._across(a, b)

    # --- ticks and messages ---

    def _tick(self, vm: int, k: int) -> None:
        config = self._configs[vm]
        deadline = self._start_at + k * config.tick_period
        self.cores[vm].tick(k, self.now, self.now - deadline)
        rate = self._wire.bad_frame_rate
        if rate and config.peer_ids and self._rng.random() < rate:
            peer = self._rng.choice(config.peer_ids)
            if peer not in self._dead:
                self._push(self.now + self._wire.delay, _GARBLED, vm, peer)
        if k + 1 < config.total_ticks:
            self._schedule_tick(vm, k + 1)

    def _schedule_tick(self, vm: int, k: int) -> None:
        """Tick k at its deadline, a little late; at once if that has passed (a burst)."""
        period = self._configs[vm].tick_period
        most = period * LATE if self._tick_late is None else min(self._tick_late, period * LATE)
        late = self._rng.random() * most
        self._push(max(self.now, self._start_at + k * period + late), _TICK, vm, k)

    def _arrive(self, vm: int, msg: Message) -> None:
        if vm in self._frozen:
            self._frozen[vm].append(msg)
        else:
            self.cores[vm].arrive(msg)

    def _garbled(self, vm: int, sender: int) -> None:
        """A garbled line on `sender`'s connection, refused by the VM's codec as a real one is."""
        reason = _refusal(self._codecs[vm], GARBLED)
        peer = f"127.0.0.1:{40000 + sender}"  # the far end of the sender's connection
        self.cores[vm].bad_frame(reason, peer, sender, self.now)

    def _link_from(self, vm: int) -> SendMessage:
        """What VM `vm` sends into: its links to every peer."""
        wire, run = self._wire, self._configs[vm].run

        def send(
            to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
        ) -> None:
            link = (vm, to)
            if link in self._down or (wire.failure_rate and self._rng.random() < wire.failure_rate):
                for _ in delays:  # the link is down: every copy is refused
                    self.cores[vm].send_failed(to, msg_id, NOT_CONNECTED, self.now)
                return
            msg = Message(run, vm, to, msg_id, lamport, vc)
            if self._tamper is not None:
                msg = self._tamper(msg)
            if (unanswered := self._silent.get(link)) is not None:
                unanswered.extend(msg_id for _ in delays)
                if to in self._dead:
                    return  # nothing on the far end will read it
                if self._across(vm, to):
                    self._stalled.setdefault(link, []).extend(msg for _ in delays)
                    return
            for delay in delays:
                at = self.now + wire.delay + delay / self._time_scale
                self._push(at, _ARRIVAL, to, msg)

        return send

    def _push(self, at: float, what: int, vm: int, payload: object) -> None:
        heapq.heappush(self._events, (at, what, next(self._serial), vm, payload))


def _dies_with(vm: int, event: tuple[float, int, int, int, object]) -> bool:
    """Whether a pending event is gone once `vm` is killed: its own ticks, whatever is on
    its way to it, and what it sent that has not arrived: a killed container's network
    stack goes with it, and so do the bytes in its socket buffers."""
    _, what, _, to, payload = event
    if what in (_FAULT_BEGIN, _FAULT_END, _LINK_DOWN, _LINK_UP):
        return False
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
