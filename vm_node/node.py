"""One VM: the start barrier, the tick loop, and the orderly end.

Only the tick loop changes clocks. Frames arrive on the network tasks and
are put on the inbox (or noted, for control frames); the tick loop takes at
most one message per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import signal
import sys
import time
from collections import deque

import msgspec
from msgspec import UNSET

from vm_node.clock import Clocks
from vm_node.conditions import LinkConditions
from vm_node.config import NodeConfig
from vm_node.decision import Send, decide
from vm_node.errors import BarrierTimeout
from vm_node.eventlog import EventLog
from vm_node.outbox import Outbox
from vm_node.pacing import Ticker
from vm_node.peerlink import PeerLink, barrier_heartbeat
from vm_node.priority import release_realtime
from vm_node.ratefit import RateFit
from vm_node.receiver import Receiver
from vm_node.resolver import Resolver
from vm_node.resume import Resume
from vm_node.vocabulary import Bye, Event, Frame, Message, Ready
from vm_node.wire import Codec

START_MARGIN = 0.25  # seconds between the last VM being ready and the first tick
SIGNAL_GOODBYE = 0.3  # seconds to wait for peers' byes after a signal


class Totals(msgspec.Struct, gc=False):
    ticks: int = 0
    sent: int = 0
    received: int = 0
    dropped: int = 0
    bad_frames: int = 0
    fit: RateFit = msgspec.field(default_factory=RateFit)


class Node:
    def __init__(
        self, config: NodeConfig, incarnation: int, log: EventLog, resume: Resume | None = None
    ) -> None:
        self.config, self.incarnation, self.log, self.resume = config, incarnation, log, resume
        self.clocks = Clocks.zero(config.vm, config.vms)
        if resume is not None:  # clocks stay monotonic across restarts
            self.clocks = Clocks(config.vm, resume.lamport, resume.vector)
        self.inbox: deque[Message] = deque()
        self.totals = Totals()
        # A restarted VM draws afresh, so it does not replay its first life.
        self._rng = random.Random(
            config.seed if incarnation == 0 else f"{config.seed}:{incarnation}"
        )
        net_rng = random.Random(f"{config.seed}:{incarnation}:links")
        self.conditions = LinkConditions(config.links, config.vm, net_rng)
        self._msg_counter = 0
        self._peer_ids = config.peer_ids  # drawn from on every tick: computed once
        self._period = config.tick_period
        key = config.auth_key.encode() if config.auth_key is not None else None
        self.codec = Codec(config.run, config.vm, config.vms, key)
        self._proposals: dict[int, float] = {}
        self._byes: set[int] = set()
        self._changed = asyncio.Event()  # a ready or bye arrived
        resolver = Resolver(config.vm, config.base_port, dict(config.peers))
        self.receiver = Receiver(self.codec, self, peers=len(config.peer_ids))
        beat, hello_wait = barrier_heartbeat(config.vms), self.receiver.hello_timeout
        self.links = {
            j: PeerLink(j, resolver, self.codec, self, config.start_peers.get(j), beat, hello_wait)
            for j in config.peer_ids
        }
        self.outbox = Outbox(self.links, self.conditions, config.time_scale, self)
        self._start_at = 0.0
        self._ticking: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._corked = False
        self._stop_reason = "completed"

    # --- events from the network tasks (never touch the clocks) ---

    def on_frame(self, frame: Frame) -> None:
        match frame:
            case Message():
                self.inbox.append(frame)
            case Ready():
                self._proposals[frame.sender] = frame.start_at
                self._changed.set()
            case Bye():
                self._byes.add(frame.sender)
                self._changed.set()

    def on_hello(self, sender: int, host: str) -> None:
        self.links[sender].hint(host)

    def on_heard(self, sender: int) -> None:
        self.links[sender].heard()

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None:
        self.totals.bad_frames += 1
        # `from` is null until the connection has said hello
        self._event(Event.BAD_FRAME, reason=reason, peer=peer, sender=sender)

    def on_peer_up(self, peer: int) -> None:
        self._event(Event.PEER_UP, peer=peer)

    def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None:
        self._event(Event.PEER_DOWN, peer=peer, reason=reason)
        for msg_id in undelivered:
            self.on_send_failed(peer, msg_id, "connection lost before the peer acknowledged it")

    def on_send_failed(self, to: int, msg_id: str, reason: str) -> None:
        self.totals.dropped += 1
        self._event(Event.SEND_FAILED, to=to, msg_id=msg_id, reason=reason)

    def on_fault(self, kind: str, to: int, msg_id: str) -> None:
        self._event(Event.FAULT, kind=kind, to=to, msg_id=msg_id)

    # --- the life of a VM ---

    async def run(self) -> int:
        """Barrier, ticks, goodbye. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        config = self.config
        port = await self.receiver.start(config.host, config.listen_port, config.listen_fd)
        self._event(Event.START, config=self.config.to_log() | {"port": port})
        link_tasks = [asyncio.create_task(link.run()) for link in self.links.values()]
        code = 0
        try:
            self._ticking = asyncio.create_task(self._barrier_then_ticks())
            if self._stop_requested:  # a signal came while we were starting
                self._ticking.cancel()
            await self._ticking
        except asyncio.CancelledError:
            self._stop_reason = "signal"
        except BarrierTimeout as e:
            self._stop_reason, code = str(e), 1
        finally:
            await self._goodbye()
            self.outbox.drop_held()
            await self._disconnect(link_tasks)
            self._log_stop()  # the last line: nothing is left that could log
        return code

    async def _disconnect(self, link_tasks: list[asyncio.Task[None]]) -> None:
        """Stop listening, end every link and connection, and wait until all have ended."""
        for task in link_tasks:
            task.cancel()
        for result in await asyncio.gather(*link_tasks, return_exceptions=True):
            if not isinstance(result, asyncio.CancelledError | None):
                print(f"vm_node: a peer link failed: {result!r}", file=sys.stderr)
        for link in self.links.values():
            link.close()
        await self.receiver.close()

    def stop(self) -> None:
        """SIGTERM/SIGINT: end the tick loop between two ticks."""
        self._stop_requested = True
        if self._ticking is not None:
            self._ticking.cancel()

    async def _barrier_then_ticks(self) -> None:
        if self.resume is not None and self.resume.start_at is not None:
            self._start_at = self.resume.start_at  # the trial is under way: rejoin it
            self._event(Event.READY, start_at=self._start_at, resumed=True)
        else:
            self._start_at = await self._agree_on_start()
            self._event(Event.READY, start_at=self._start_at)
        try:
            await self._tick_loop()
        finally:
            if self.config.realtime:  # granted at start-up: the goodbye is ordinary work
                release_realtime()

    async def _agree_on_start(self) -> float:
        """Once linked to every peer, propose a start; all VMs take the latest proposal."""
        try:
            async with asyncio.timeout(self.config.barrier_timeout):
                for link in self.links.values():
                    await link.connected.wait()
                mine = max(time.time() + START_MARGIN, self.config.start_at or 0.0)
                ready = self.codec.ready(mine)
                for link in self.links.values():
                    link.send(ready)
                while len(self._proposals) < len(self.links):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            unlinked = [j for j, link in self.links.items() if not link.connected.is_set()]
            missing = [j for j in self.links if j not in self._proposals or j in unlinked]
            raise BarrierTimeout(missing, len(self.links), len(unlinked)) from None
        return max([mine, *self._proposals.values()])

    async def _tick_loop(self) -> None:
        """Ticks at absolute deadlines start_at + k * period: no drift accumulates.

        A restarted VM resumes at the first deadline still ahead of it.
        """
        loop = asyncio.get_running_loop()
        for link in self.links.values():
            link.start_ticking()
        period = self._period
        origin = loop.time() + (self._start_at - time.time())  # start_at, monotonic clock
        first = max(0, math.ceil((loop.time() - origin) / period)) if self.resume else 0
        try:
            await Ticker(loop, origin, period, self._tick, self._cork).run(
                first, self.config.total_ticks
            )
        finally:
            self._cork(False)

    def _cork(self, corked: bool) -> None:
        if corked is not self._corked:  # only as a burst begins or ends: peers are many
            self._corked = corked
            for link in self.links.values():
                link.cork(corked)

    def _tick(self, k: int, late: float) -> None:
        """Tick k, `late` seconds after its deadline."""
        now = time.time()
        self.totals.ticks += 1
        self.totals.fit.add(k, now)
        # A tick a whole period late or more is behind; UNSET leaves the key off the line.
        # Rounded to microseconds by arithmetic: round(x, 6) converts through decimal.
        behind = round(late * 1e6) / 1e6 if late >= self._period else UNSET
        if self.inbox:
            msg = self.inbox.popleft()
            before = self.clocks.lamport
            self.clocks = self.clocks.receive(msg.lamport, msg.vc)
            self.totals.received += 1
            self._event(
                Event.RECEIVE,
                at=now,
                tick=k,
                behind_s=behind,
                sender=msg.sender,
                msg_id=msg.msg_id,
                msg_lamport=msg.lamport,
                jump=self.clocks.lamport - before,
            )
            return
        action = decide(self._rng, self.config.event_range, self._peer_ids)
        clocks = self.clocks = self.clocks.local_event()
        vc = clocks.vc()  # one dict for the line and every message of the tick
        if not isinstance(action, Send):
            self.log.internal(clocks.lamport, vc, now, k, behind)
            return
        msg_ids = [self._next_msg_id() for _ in action.to]
        self.totals.sent += len(msg_ids)
        self.log.send(clocks.lamport, vc, now, k, behind, list(action.to), msg_ids)
        sim_now = (now - self._start_at) * self.config.time_scale
        for to, msg_id in zip(action.to, msg_ids, strict=True):
            # after the send line: failures and faults refer to it
            line = self.codec.message(to, msg_id, clocks.lamport, vc)
            self.outbox.send(to, line, msg_id, sim_now)

    def _next_msg_id(self) -> str:
        self._msg_counter += 1
        return f"{self.config.vm}-{self.incarnation}-{self._msg_counter}"

    async def _goodbye(self) -> None:
        """Deliver what is held back, say bye, and take in what peers send until they do too."""
        timeout = self.config.bye_timeout if self._stop_reason == "completed" else SIGNAL_GOODBYE
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.outbox.drained()
                bye = self.codec.bye()
                for link in self.links.values():
                    link.send(bye)
                await asyncio.gather(*(link.flush() for link in self.links.values()))
                while len(self._byes) < len(self.links):
                    self._changed.clear()
                    await self._changed.wait()

    def _log_stop(self) -> None:
        t = self.totals
        achieved = t.fit.ticks_per_second()
        self._event(
            Event.STOP,
            reason=self._stop_reason,
            ticks=t.ticks,
            sent=t.sent,
            received=t.received,
            dropped=t.dropped,
            bad_frames=t.bad_frames,
            unacked=sum(link.unacked for link in self.links.values()),
            missing_byes=sorted(set(self.links) - self._byes),
            rate_configured=self.config.rate,
            rate_achieved=achieved / self.config.time_scale if achieved else None,
        )

    def _event(self, event: Event, *, at: float | None = None, **fields: object) -> None:
        clocks = self.clocks
        self.log.event(event, clocks.lamport, clocks.vc(), len(self.inbox), at, **fields)
