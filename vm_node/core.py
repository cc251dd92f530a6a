"""A VM's rules as a state machine, with no sockets, clocks or timers inside.

What happens to the VM comes in as calls, each with the time it happened
(`now`, Unix seconds, as the driver's clock reads it): a tick, a message put
on the inbox, a link going up or down, a send the network refused, a bad
frame. What the VM does goes out through the two callables it is given: the
log lines to write, as the typed values of vm_node.vocabulary, and the
messages to send. The asyncio service (vm_node.node) drives it in real time
and the simulator (vm_node.sim) in virtual time, so both write the same lines
for the same events.

Only a tick changes the clocks: it takes at most one message from the inbox,
else draws what to do (vm_node.decision). Every other line repeats them.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec
from msgspec import UNSET

from vm_node.clock import Clocks
from vm_node.conditions import NORMAL, LinkConditions
from vm_node.config import NodeConfig
from vm_node.decision import Send, decide
from vm_node.ratefit import RateFit
from vm_node.resume import Resume
from vm_node.vocabulary import (
    LINE_TYPES,
    Event,
    InternalLine,
    LogLine,
    Message,
    SendLine,
    VectorClock,
)

AT_ONCE = NORMAL.delays  # one copy, sent now


class Totals(msgspec.Struct, gc=False):
    """What an incarnation counts as it goes, for its stop line."""

    ticks: int = 0
    sent: int = 0
    received: int = 0
    dropped: int = 0
    bad_frames: int = 0
    fit: RateFit = msgspec.field(default_factory=RateFit)


class SendMessage(Protocol):
    def __call__(
        self, to: int, msg_id: str, lamport: int, vc: VectorClock, delays: Sequence[float]
    ) -> None:
        """Send one message: a copy after each delay (simulated seconds; 0 is now)."""


class VmCore:
    """One VM incarnation's clocks, inbox, draws and totals, and the lines they give."""

    def __init__(
        self,
        config: NodeConfig,
        incarnation: int,
        write: Callable[[LogLine], None],
        send: SendMessage,
        resume: Resume | None = None,
    ) -> None:
        self.config, self.incarnation = config, incarnation
        self.clocks = Clocks.zero(config.vm, config.vms)
        if resume is not None:  # clocks stay monotonic across restarts
            self.clocks = Clocks(config.vm, resume.lamport, resume.vector)
        self.inbox: deque[Message] = deque()
        self.totals = Totals()
        self.start_at = 0.0  # the agreed start, once ready
        # A restarted VM draws afresh, so it does not replay its first life.
        self._rng = random.Random(
            config.seed if incarnation == 0 else f"{config.seed}:{incarnation}"
        )
        self._conditions: LinkConditions | None = None  # None: every message goes out at once
        if config.links:
            net_rng = random.Random(f"{config.seed}:{incarnation}:links")
            self._conditions = LinkConditions(config.links, config.vm, net_rng)
        self._write, self._send = write, send
        self._msg_counter = 0
        self._seq = itertools.count()
        self._peer_ids = config.peer_ids  # drawn from on every tick: computed once
        self._period = config.tick_period
        self._event_range = config.event_range
        self._clock_offset = config.clock_offset  # a host whose clock is off
        self._run, self._vm = config.run, config.vm  # on every line

    # --- the life of the VM ---

    def start(self, port: int, now: float) -> None:
        """Listening on `port`: the first line, with the whole configuration."""
        self._event(Event.START, now, config=self.config.to_log() | {"port": port})

    def ready(self, start_at: float, now: float, *, resumed: bool = False) -> None:
        """The trial starts (or, for a restarted VM, is under way) at `start_at`."""
        self.start_at = start_at
        self._event(Event.READY, now, start_at=start_at, resumed=True if resumed else UNSET)

    def tick(self, k: int, now: float, late: float) -> None:
        """Tick k, run at `now`, `late` seconds after its deadline."""
        totals = self.totals
        totals.ticks += 1
        totals.fit.add(k, now)
        # A tick a whole period late or more is behind; UNSET leaves the key off the line.
        # Rounded to microseconds by arithmetic: round(x, 6) converts through decimal.
        behind = round(late * 1e6) / 1e6 if late >= self._period else UNSET
        if self.inbox:
            msg = self.inbox.popleft()
            before = self.clocks.lamport
            self.clocks = self.clocks.receive(msg.lamport, msg.vc)
            totals.received += 1
            self._event(
                Event.RECEIVE,
                now,
                tick=k,
                behind_s=behind,
                sender=msg.sender,
                msg_id=msg.msg_id,
                msg_lamport=msg.lamport,
                jump=self.clocks.lamport - before,
            )
            return
        action = decide(self._rng, self._event_range, self._peer_ids)
        clocks = self.clocks = self.clocks.local_event()
        vc = clocks.vc()  # one dict for the line and every message of the tick
        if not isinstance(action, Send):
            self._write(
                InternalLine(
                    timestamp=now + self._clock_offset,
                    seq=next(self._seq),
                    run=self._run,
                    vm=self._vm,
                    incarnation=self.incarnation,
                    lamport=clocks.lamport,
                    vc=vc,
                    queue_len=0,
                    tick=k,
                    behind_s=behind,
                )
            )
            return
        msg_ids = [self._next_msg_id() for _ in action.to]
        totals.sent += len(msg_ids)
        self._write(
            SendLine(
                timestamp=now + self._clock_offset,
                seq=next(self._seq),
                run=self._run,
                vm=self._vm,
                incarnation=self.incarnation,
                lamport=clocks.lamport,
                vc=vc,
                queue_len=0,
                tick=k,
                behind_s=behind,
                to=list(action.to),
                msg_ids=msg_ids,
            )
        )
        # after the send line: failures and faults refer to it
        for to, msg_id in zip(action.to, msg_ids, strict=True):
            if self._conditions is None:
                self._send(to, msg_id, clocks.lamport, vc, AT_ONCE)
            else:
                self._through_conditions(self._conditions, to, msg_id, clocks.lamport, vc, now)

    def stop(self, reason: str, unacked: int, missing_byes: list[int], now: float) -> None:
        """The last line: why the VM stopped, and its totals."""
        t = self.totals
        achieved = t.fit.ticks_per_second()
        self._event(
            Event.STOP,
            now,
            reason=reason,
            ticks=t.ticks,
            sent=t.sent,
            received=t.received,
            dropped=t.dropped,
            bad_frames=t.bad_frames,
            unacked=unacked,
            missing_byes=missing_byes,
            rate_configured=self.config.rate,
            rate_achieved=achieved / self.config.time_scale if achieved else None,
        )

    # --- from the network side (never touching the clocks) ---

    def arrive(self, msg: Message) -> None:
        """A message is on the inbox: a later tick takes it."""
        self.inbox.append(msg)

    def bad_frame(self, reason: str, peer: str, sender: int | None, now: float) -> None:
        """A peer sent what the codec refused; `sender` is None until it said hello."""
        self.totals.bad_frames += 1
        self._event(Event.BAD_FRAME, now, reason=reason, peer=peer, sender=sender)

    def peer_up(self, peer: int, now: float) -> None:
        self._event(Event.PEER_UP, now, peer=peer)

    def peer_down(self, peer: int, reason: str, undelivered: list[str], now: float) -> None:
        """A link went down; the messages it had not had acknowledged failed."""
        self._event(Event.PEER_DOWN, now, peer=peer, reason=reason)
        for msg_id in undelivered:
            self.send_failed(peer, msg_id, "connection lost before the peer acknowledged it", now)

    def send_failed(self, to: int, msg_id: str, reason: str, now: float) -> None:
        self.totals.dropped += 1
        self._event(Event.SEND_FAILED, now, to=to, msg_id=msg_id, reason=reason)

    # --- within ---

    def _through_conditions(
        self,
        conditions: LinkConditions,
        to: int,
        msg_id: str,
        lamport: int,
        vc: VectorClock,
        now: float,
    ) -> None:
        """Send one message as the link conditions in force let it go (if at all)."""
        delivery = conditions.delivery(to, (now - self.start_at) * self.config.time_scale)
        if delivery.lost or delivery.duplicated:
            kind = "loss" if delivery.lost else "duplicate"
            self._event(Event.FAULT, now, kind=kind, to=to, msg_id=msg_id)
        if delivery.delays:
            self._send(to, msg_id, lamport, vc, delivery.delays)

    def _next_msg_id(self) -> str:
        self._msg_counter += 1
        return f"{self._vm}-{self.incarnation}-{self._msg_counter}"

    def _event(self, event: Event, now: float, **fields: Any) -> None:
        """A line with the clocks and inbox after the event."""
        clocks = self.clocks
        self._write(
            LINE_TYPES[event](
                timestamp=now + self._clock_offset,
                seq=next(self._seq),
                run=self._run,
                vm=self._vm,
                incarnation=self.incarnation,
                lamport=clocks.lamport,
                vc=clocks.vc(),
                queue_len=len(self.inbox),
                **fields,
            )
        )
