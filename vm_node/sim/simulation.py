"""A trial's VMs run to the end in virtual time: their ticks, messages and faults.

Each VM is a VmCore (vm_node.core) with the configuration a real VM of the trial
would get. The agenda stands in for the wall clock: each VM ticks on its absolute
schedule start_at + k / (rate * time_scale), each tick a little late as real
ones are, and the network (network.py) carries what the cores send. Every draw
comes from the seed: the same trial gives the same bytes.

- A kill ends one VM's incarnation without a stop line; it is started again as
  a new incarnation, resuming its clocks.
- A pause freezes a VM: no ticks. On unpause it reads what waited, then runs its
  missed ticks back to back, as a real VM behind its schedule does.
- A cut (a partition) splits the network until it heals.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

from vm_node.config import NodeConfig
from vm_node.core import VmCore
from vm_node.errors import BadFrame
from vm_node.eventlog import EventLog
from vm_node.resume import Resume
from vm_node.sim.agenda import (
    ARRIVAL,
    FAULT_BEGIN,
    FAULT_END,
    GARBLED,
    LINK_DOWN,
    LINK_UP,
    TICK,
    Agenda,
)
from vm_node.sim.faults import Cut, Fault, Kill, Pause, length
from vm_node.sim.network import PLAIN, Network, Tamper, Wire
from vm_node.vocabulary import Message
from vm_node.wire import Codec

LATE = 0.1  # a tick runs up to this share of its period after its deadline
GARBLED_LINE = b'{"type": "msg", "run": '  # a line cut short: the bad frame a peer sends

OpenLog: TypeAlias = Callable[[int, int], EventLog]  # (vm, incarnation) -> its log


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
        self._start_at = start_at
        self._time_scale = self._configs[0].time_scale
        self._open_log = open_log  # (vm, incarnation) -> that incarnation's log
        self._bad_frame_rate = wire.bad_frame_rate
        self._wire_delay = wire.delay
        self._faults = tuple(faults)
        self._tick_late = tick_late
        self._rng = random.Random(f"{seed}:network")  # lateness, refusals, reconnects
        self._agenda = Agenda(start_at)
        self._next_tick: dict[int, int] = {}  # a paused VM's first tick not yet run
        self.cores: list[VmCore] = []
        vms = len(self._configs)
        self._network = Network(
            vms, self._time_scale, wire, self._rng, self._agenda, self.cores, tamper
        )
        self.cores += [self._core(config.vm, 0) for config in self._configs]
        self._codecs = [Codec(c.run, c.vm, c.vms) for c in self._configs]

    @property
    def now(self) -> float:
        """The virtual clock: the time of the last event run."""
        return self._agenda.now

    def run(self) -> None:
        """Start every VM, run every event in time order, then stop them."""
        start_at, agenda, network = self._start_at, self._agenda, self._network
        for config, core in zip(self._configs, self.cores, strict=True):
            core.start(config.listen_port, start_at - 1.0)
            for peer in config.peer_ids:  # linked to every peer before the barrier
                core.peer_up(peer, start_at - 0.75)
            core.ready(start_at, start_at - 0.5)
            self._schedule_tick(config.vm, 0)
        for fault in self._faults:
            agenda.push(self._at(fault.at), FAULT_BEGIN, -1, fault)
            if (lasts := length(fault)) is not None:
                agenda.push(self._at(fault.at + lasts), FAULT_END, -1, fault)
        while agenda:
            what, vm, payload = agenda.pop()
            if what == ARRIVAL:
                assert isinstance(payload, Message)
                network.deliver(vm, payload)
            elif what == TICK:
                assert isinstance(payload, int)
                self._tick(vm, payload)
            elif what == GARBLED:
                assert isinstance(payload, int)
                self._garbled(vm, payload)
            elif what == LINK_DOWN:
                assert isinstance(payload, tuple)
                network.link_down(payload)
            elif what == LINK_UP:
                assert isinstance(payload, tuple)
                network.link_up(payload)
            else:
                assert isinstance(payload, Kill | Pause | Cut)
                self._begin(payload) if what == FAULT_BEGIN else self._end(payload)
        # Every peer's bye has come, after everything it sent: the VMs stop.
        end = max(start_at + self._configs[0].duration / self._time_scale + 0.1, agenda.now)
        for vm, core in enumerate(self.cores):
            if vm not in network.dead:
                peers = self._configs[vm].peer_ids
                unheard = network.unheard(vm, peers)
                core.stop("completed", network.unacked(vm, peers), unheard, end)

    def _at(self, simulated: float) -> float:
        """The virtual clock `simulated` seconds into the trial."""
        return self._start_at + simulated / self._time_scale

    def _core(self, vm: int, incarnation: int, resume: Resume | None = None) -> VmCore:
        config = self._configs[vm]
        log = self._open_log(vm, incarnation)
        send = self._network.sender(vm, config.run)
        return VmCore(config, incarnation, log.write, send, resume)

    # --- faults ---

    def _begin(self, fault: Fault) -> None:
        match fault:
            case Kill():
                self._network.kill(fault.vm, self._configs[fault.vm].peer_ids)
            case Pause():
                self._pause(fault.vm)
            case Cut():
                self._network.split(fault)

    def _end(self, fault: Fault) -> None:
        match fault:
            case Kill():
                self._restart(fault.vm)
            case Pause():
                self._unpause(fault.vm)
            case Cut():
                self._network.heal()

    def _restart(self, vm: int) -> None:
        """A new incarnation, resuming from the clocks its predecessor last logged; its
        links and its peers' links to it connect once it listens."""
        config, old, now = self._configs[vm], self.cores[vm], self._agenda.now
        resume = Resume(old.clocks.lamport, old.clocks.vector, old.start_at)
        core = self.cores[vm] = self._core(vm, old.incarnation + 1, resume)
        core.start(config.listen_port, now)
        core.ready(old.start_at, now, resumed=True)
        self._network.started(vm, config.peer_ids)
        first = max(0, math.ceil((now - old.start_at) / config.tick_period))
        if first < config.total_ticks:
            self._schedule_tick(vm, first)

    def _pause(self, vm: int) -> None:
        """No more ticks; what arrives waits, unacknowledged, in the VM's buffers."""
        ticks = self._agenda.take(lambda event: event[1] == TICK and event[3] == vm)
        if ticks:
            k = min(event[4] for event in ticks if isinstance(event[4], int))
            self._next_tick[vm] = k
        self._network.freeze(vm, self._configs[vm].peer_ids)

    def _unpause(self, vm: int) -> None:
        """The VM reads what waited, its peers' links hear it again, and it runs the ticks
        it missed back to back."""
        self._network.thaw(vm, self._configs[vm].peer_ids)
        if (k := self._next_tick.pop(vm, None)) is not None:
            self._agenda.push(self._agenda.now, TICK, vm, k)

    # --- ticks ---

    def _tick(self, vm: int, k: int) -> None:
        config, now = self._configs[vm], self._agenda.now
        deadline = self._start_at + k * config.tick_period
        self.cores[vm].tick(k, now, now - deadline)
        rate = self._bad_frame_rate
        if rate and config.peer_ids and self._rng.random() < rate:
            peer = self._rng.choice(config.peer_ids)
            if peer not in self._network.dead:
                self._agenda.push(now + self._wire_delay, GARBLED, vm, peer)
        if k + 1 < config.total_ticks:
            self._schedule_tick(vm, k + 1)

    def _schedule_tick(self, vm: int, k: int) -> None:
        """Tick k at its deadline, a little late; at once if that has passed (a burst)."""
        period = self._configs[vm].tick_period
        most = period * LATE if self._tick_late is None else min(self._tick_late, period * LATE)
        late = self._rng.random() * most
        self._agenda.push(max(self._agenda.now, self._start_at + k * period + late), TICK, vm, k)

    def _garbled(self, vm: int, sender: int) -> None:
        """A garbled line on `sender`'s connection, refused by the VM's codec as a real one is."""
        reason = _refusal(self._codecs[vm], GARBLED_LINE)
        peer = f"127.0.0.1:{40000 + sender}"  # the far end of the sender's connection
        self.cores[vm].bad_frame(reason, peer, sender, self._agenda.now)


def _refusal(codec: Codec, line: bytes) -> str:
    """Why `codec` refuses `line`."""
    try:
        codec.decode(line)
    except BadFrame as e:
        return str(e)
    raise ValueError(f"{line!r} decodes as a frame")
