"""The network between simulated VMs: the wire, the links and what faults do to them.

Links behave as real ones do (vm_node.peerlink): a link whose peer stops answering
is declared down after its silence, its unacknowledged messages reported
undelivered, sends on it refused until it is up again, and it reconnects after a
backoff once nothing blocks it. A killed VM's network stack goes with it, a
frozen VM's socket buffers hold what reaches it, and a cut holds back what would
cross it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

import msgspec

from vm_node.core import SendMessage, VmCore
from vm_node.peerlink import BACKOFF_CAP, BACKOFF_FIRST, DEAD_AFTER, NOT_CONNECTED
from vm_node.sim.agenda import (
    ARRIVAL,
    FAULT_BEGIN,
    FAULT_END,
    GARBLED,
    LINK_DOWN,
    LINK_UP,
    Agenda,
    Event,
)
from vm_node.sim.faults import Cut
from vm_node.vocabulary import Message, VectorClock

KILL_NOTICE = 0.06  # wall seconds until a killed VM's peers see their connections end
CONNECT = 0.005  # wall seconds for a started VM's links to connect
SILENCE = f"no answer for {DEAD_AFTER:g} s"  # why a link that falls silent goes down
CLOSED = "connection closed by peer"  # why a link to a killed VM goes down

Link: TypeAlias = tuple[int, int]  # (sender, receiver): the sender's link to the receiver
Tamper: TypeAlias = Callable[[Message], Message]  # what the wire does to a message


class Wire(msgspec.Struct, frozen=True):
    """The network between the VMs, beyond what their own link conditions do."""

    delay: float = 0.002  # wall seconds a message spends on the wire
    failure_rate: float = 0.0  # share of messages whose link refuses them
    bad_frame_rate: float = 0.0  # chance per tick that a peer sends a garbled line


PLAIN = Wire()  # a message takes its delay, and nothing else happens to it


class Network:
    """Every link between `vms` VMs. `cores` is the simulation's own list of the VMs'
    cores, by VM, which a restart changes: the network reports to the core there now."""

    def __init__(
        self,
        vms: int,
        time_scale: float,
        wire: Wire,
        rng: random.Random,
        agenda: Agenda,
        cores: Sequence[VmCore],
        tamper: Tamper | None = None,
    ) -> None:
        self._vms = vms
        self._time_scale = time_scale
        self._wire = wire
        self._rng = rng  # shared with the scheduler: refusals and reconnects
        self._agenda = agenda
        self._cores = cores
        self._tamper = tamper
        self.dead: set[int] = set()  # VMs killed and not started again
        self._frozen: dict[int, list[Message]] = {}  # paused VMs: what waits in their buffers
        self._sides: list[int] | None = None  # each VM's side of the cut in force
        self._silent: dict[Link, list[str]] = {}  # links with no answer: what went unacked
        self._down: set[Link] = set()  # links declared down: sends on them are refused
        # What a cut holds back on a link not yet declared down: the connection lives on,
        # and TCP delivers it once the cut heals.
        self._stalled: dict[Link, list[Message]] = {}

    # --- the VMs' ends ---

    def kill(self, vm: int, peers: Sequence[int]) -> None:
        """`vm` is gone, and with it its pending ticks and every message to or from it
        still on the wire; its peers' links to it end."""
        self.dead.add(vm)
        gone = self._agenda.take(lambda event: _dies_with(vm, event))
        for peer in peers:
            self._silence((peer, vm), CLOSED, KILL_NOTICE)
            self._down.discard((vm, peer))  # its own links die with it, unlogged
            self._silent.pop((vm, peer), None)
        for _, what, _, to, payload in gone:
            if what == ARRIVAL and to == vm:  # unacknowledged: its sender will say so
                assert isinstance(payload, Message)
                self._unanswered((payload.sender, vm), payload.msg_id)

    def started(self, vm: int, peers: Sequence[int]) -> None:
        """A new incarnation listens: its links and its peers' links to it connect."""
        self.dead.discard(vm)
        now = self._agenda.now
        for peer in peers:
            self._down.add((vm, peer))
            self._agenda.push(now + CONNECT, LINK_UP, vm, (vm, peer))
            if (peer, vm) in self._down:
                self._agenda.push(now + CONNECT, LINK_UP, peer, (peer, vm))

    def freeze(self, vm: int, peers: Sequence[int]) -> None:
        """What reaches `vm` waits, unacknowledged, in its buffers; its peers' links to it
        fall silent."""
        self._frozen[vm] = []
        for peer in peers:
            self._silence((peer, vm), SILENCE, DEAD_AFTER)

    def thaw(self, vm: int, peers: Sequence[int]) -> None:
        """`vm` reads what waited, and its peers' links hear it again."""
        for msg in self._frozen.pop(vm):
            self._cores[vm].arrive(msg)
        for peer in peers:
            self._silent.pop((peer, vm), None)  # acknowledged at last, if not yet down
            self._reconnect((peer, vm))

    def unheard(self, vm: int, peers: Sequence[int]) -> list[int]:
        """The peers whose bye cannot reach `vm`: killed, or on a link that is down."""
        return [j for j in peers if (j, vm) in self._down or j in self.dead]

    def unacked(self, vm: int, peers: Sequence[int]) -> int:
        """How many of `vm`'s messages wait for an acknowledgement."""
        return sum(len(self._silent.get((vm, j), ())) for j in peers)

    # --- cuts ---

    def split(self, cut: Cut) -> None:
        """Every link across the cut falls silent; what is on its way across waits."""
        self._sides = cut.sides(self._vms)
        for link in self._links_across():
            self._silence(link, SILENCE, DEAD_AFTER)

        def crosses(event: Event) -> bool:
            _, what, _, to, msg = event
            return what == ARRIVAL and isinstance(msg, Message) and self._across(msg.sender, to)

        for _, _, _, to, msg in self._agenda.take(crosses):
            assert isinstance(msg, Message)
            self._unanswered((msg.sender, to), msg.msg_id)
            self._stalled.setdefault((msg.sender, to), []).append(msg)

    def heal(self) -> None:
        """A link across the cut not yet declared down delivers what the cut held back and
        hears its acknowledgements; one that is down reconnects."""
        across = self._links_across()
        self._sides = None
        for link in across:
            stalled = self._stalled.pop(link, [])
            if self._silent.pop(link, None) is not None:
                for msg in stalled:
                    self._agenda.push(self._agenda.now + self._wire.delay, ARRIVAL, link[1], msg)
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
        self._agenda.push(self._agenda.now + after, LINK_DOWN, link[0], (*link, reason))

    def _unanswered(self, link: Link, msg_id: str) -> None:
        """A message sent on a silent link: its sender reports it when the link goes down."""
        if (unanswered := self._silent.get(link)) is not None:
            unanswered.append(msg_id)

    def link_down(self, event: tuple[object, ...]) -> None:
        """A silent link's time is up: unless it was answered meanwhile, it goes down."""
        sender, receiver, reason = event
        assert isinstance(sender, int) and isinstance(receiver, int) and isinstance(reason, str)
        link = (sender, receiver)
        if link not in self._silent or sender in self.dead:  # answered meanwhile
            return
        undelivered = self._silent.pop(link)
        self._stalled.pop(link, None)  # the connection is closed: its bytes go with it
        self._down.add(link)
        self._cores[sender].peer_down(receiver, reason, undelivered, self._agenda.now)
        if not self._blocked(link):
            self._reconnect(link)

    def _reconnect(self, link: Link) -> None:
        """A link that is down connects again after its backoff, once nothing blocks it."""
        if link in self._down and not self._blocked(link):
            backoff = self._rng.uniform(BACKOFF_FIRST, BACKOFF_CAP)
            self._agenda.push(self._agenda.now + backoff, LINK_UP, link[0], link)

    def link_up(self, link: tuple[object, ...]) -> None:
        """A link connects, unless something blocks it again."""
        sender, receiver = link
        assert isinstance(sender, int) and isinstance(receiver, int)
        if (sender, receiver) not in self._down or self._blocked((sender, receiver)):
            return
        self._down.discard((sender, receiver))
        self._cores[sender].peer_up(receiver, self._agenda.now)

    def _blocked(self, link: Link) -> bool:
        """Whether the link cannot connect now: an end killed or frozen, or a cut between."""
        a, b = link
        if a in self.dead or b in self.dead or a in self._frozen or b in self._frozen:
            return True
        return self._across(a, b)

    # --- messages ---

    def sender(self, vm: int, run: str) -> SendMessage:
        """What VM `vm` of run `run` sends into: its links to every peer."""
        wire, agenda, rng, core = self._wire, self._agenda, self._rng, self._cores

        def send(
            to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
        ) -> None:
            link = (vm, to)
            if link in self._down or (wire.failure_rate and rng.random() < wire.failure_rate):
                for _ in delays:  # the link is down: every copy is refused
                    core[vm].send_failed(to, msg_id, NOT_CONNECTED, agenda.now)
                return
            msg = Message(run, vm, to, msg_id, lamport, vc)
            if self._tamper is not None:
                msg = self._tamper(msg)
            if (unanswered := self._silent.get(link)) is not None:
                unanswered.extend(msg_id for _ in delays)
                if to in self.dead:
                    return  # nothing on the far end will read it
                if self._across(vm, to):
                    self._stalled.setdefault(link, []).extend(msg for _ in delays)
                    return
            for delay in delays:
                at = agenda.now + wire.delay + delay / self._time_scale
                agenda.push(at, ARRIVAL, to, msg)

        return send

    def deliver(self, vm: int, msg: Message) -> None:
        """A message reaches `vm`: onto its inbox, or into its buffers while it is frozen."""
        if vm in self._frozen:
            self._frozen[vm].append(msg)
        else:
            self._cores[vm].arrive(msg)


def _dies_with(vm: int, event: Event) -> bool:
    """Whether a pending event is gone once `vm` is killed: its own ticks, whatever is on
    its way to it, and what it sent that has not arrived: a killed container's network
    stack goes with it, and so do the bytes in its socket buffers."""
    _, what, _, to, payload = event
    if what in (FAULT_BEGIN, FAULT_END, LINK_DOWN, LINK_UP):
        return False
    if to == vm:
        return True
    if what == ARRIVAL:
        assert isinstance(payload, Message)
        return payload.sender == vm
    return what == GARBLED and payload == vm
