"""One VM: the start barrier, the tick loop, and the orderly end.

Only the tick loop changes clocks. Frames arrive on the network tasks and
are put on the inbox (or noted, for control frames); the tick loop takes at
most one message per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from vm_node.clock import Clocks
from vm_node.config import NodeConfig
from vm_node.decision import Send, decide
from vm_node.eventlog import EventLog, LineSink, log_path, next_incarnation
from vm_node.events import Event
from vm_node.network import PeerLink, Receiver, Resolver
from vm_node.wire import Bye, Codec, Frame, Hello, Message, Ready

START_MARGIN = 0.25  # seconds between the last VM being ready and the first tick


class BarrierTimeout(Exception):
    def __init__(self, missing: list[int]) -> None:
        super().__init__(f"peers never ready: {missing}")
        self.missing = missing


@dataclass(slots=True)
class RateFit:
    """Least-squares slope of tick times against tick index, kept as running sums."""

    n: int = 0
    k_sum: float = 0.0
    t_sum: float = 0.0
    kk_sum: float = 0.0
    kt_sum: float = 0.0
    origin: float | None = None

    def add(self, k: int, t: float) -> None:
        if self.origin is None:
            self.origin = t
        t -= self.origin  # keep the sums small: float precision
        self.n += 1
        self.k_sum += k
        self.t_sum += t
        self.kk_sum += k * k
        self.kt_sum += k * t

    def ticks_per_second(self) -> float | None:
        denominator = self.n * self.kk_sum - self.k_sum**2
        if self.n < 2 or denominator == 0:
            return None
        slope = (self.n * self.kt_sum - self.k_sum * self.t_sum) / denominator
        return 1.0 / slope if slope > 0 else None


@dataclass(slots=True)
class Totals:
    ticks: int = 0
    sent: int = 0
    received: int = 0
    dropped: int = 0
    bad_frames: int = 0
    fit: RateFit = field(default_factory=RateFit)


class Node:
    def __init__(self, config: NodeConfig, incarnation: int, log: EventLog) -> None:
        self.config = config
        self.incarnation = incarnation
        self.log = log
        self.clocks = Clocks.zero(config.vm, config.vms)
        self.inbox: deque[Message] = deque()
        self.totals = Totals()
        self._rng = random.Random(config.seed)
        self._msg_counter = 0
        key = config.auth_key.encode() if config.auth_key is not None else None
        self.codec = Codec(config.run, config.vm, config.vms, key)
        self._proposals: dict[int, float] = {}
        self._byes: set[int] = set()
        self._changed = asyncio.Event()  # a ready or bye arrived
        resolver = Resolver(config.vm, config.base_port, dict(config.peers))
        hello = self.codec.encode(Hello(config.vm))
        self.links = {j: PeerLink(j, resolver, hello, self) for j in config.peer_ids}
        self.receiver = Receiver(self.codec, self)
        self._ticking: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._stop_reason = "completed"

    # --- events from the network tasks (never touch the clocks) ---

    def on_frame(self, frame: Frame) -> None:
        match frame:
            case Message():
                self.inbox.append(frame)
            case Ready(sender, start_at):
                self._proposals[sender] = start_at
                self._changed.set()
            case Bye(sender):
                self._byes.add(sender)
                self._changed.set()

    def on_bad_frame(self, reason: str, peer: str, sender: int | None) -> None:
        self.totals.bad_frames += 1
        # `from` is null until the connection has said hello
        self._event(Event.BAD_FRAME, reason=reason, peer=peer, **{"from": sender})

    def on_peer_up(self, peer: int) -> None:
        self._event(Event.PEER_UP, peer=peer)

    def on_peer_down(self, peer: int, reason: str) -> None:
        self._event(Event.PEER_DOWN, peer=peer, reason=reason)

    # --- the life of a VM ---

    async def run(self) -> int:
        """Barrier, ticks, goodbye. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        port = await self.receiver.start(self.config.host, self.config.listen_port)
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
            self._log_stop()
            for task in link_tasks:
                task.cancel()
            await asyncio.gather(*link_tasks, return_exceptions=True)
            for link in self.links.values():
                link.close()
            await self.receiver.close()
        return code

    def stop(self) -> None:
        """SIGTERM/SIGINT: end the tick loop between two ticks."""
        self._stop_requested = True
        if self._ticking is not None:
            self._ticking.cancel()

    async def _barrier_then_ticks(self) -> None:
        start_at = await self._agree_on_start()
        self._event(Event.READY, start_at=start_at)
        await self._tick_loop(start_at)

    async def _agree_on_start(self) -> float:
        """Once linked to every peer, propose a start; all VMs take the latest proposal."""
        try:
            async with asyncio.timeout(self.config.ready_timeout):
                for link in self.links.values():
                    await link.connected.wait()
                mine = max(time.time() + START_MARGIN, self.config.start_at or 0.0)
                ready = self.codec.encode(Ready(self.config.vm, mine))
                for link in self.links.values():
                    link.send(ready)
                while len(self._proposals) < len(self.links):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            missing = [j for j, link in self.links.items() if not link.connected.is_set()]
            missing += [j for j in self.links if j not in self._proposals and j not in missing]
            raise BarrierTimeout(sorted(missing)) from None
        return max([mine, *self._proposals.values()])

    async def _tick_loop(self, start_at: float) -> None:
        """Ticks at absolute deadlines start_at + k * period: no drift accumulates."""
        loop = asyncio.get_running_loop()
        period = self.config.tick_period
        origin = loop.time() + (start_at - time.time())  # start_at on the monotonic clock
        for k in range(self.config.total_ticks):
            deadline = origin + k * period
            delay = deadline - loop.time()
            await asyncio.sleep(max(delay, 0.0))  # 0: yield to the readers, then catch up
            late = loop.time() - deadline
            self._tick(k, behind_s=late if late >= period else None)

    def _tick(self, k: int, behind_s: float | None) -> None:
        now = time.time()
        self.totals.ticks += 1
        self.totals.fit.add(k, now)
        extra = {"tick": k} | ({"behind_s": round(behind_s, 6)} if behind_s else {})
        if self.inbox:
            msg = self.inbox.popleft()
            before = self.clocks.lamport
            self.clocks = self.clocks.receive(msg.lamport, msg.vc)
            self.totals.received += 1
            self._event(
                Event.RECEIVE, at=now, **extra, **{"from": msg.sender}, msg_id=msg.msg_id,
                msg_lamport=msg.lamport, jump=self.clocks.lamport - before,
            )  # fmt: skip
            return
        action = decide(self._rng, self.config.event_range, self.config.peer_ids)
        self.clocks = self.clocks.local_event()
        if not isinstance(action, Send):
            self._event(Event.INTERNAL, at=now, **extra)
            return
        failures: list[tuple[int, str, str]] = []
        msg_ids = []
        for to in action.to:
            msg = Message(
                self.config.vm, self._next_msg_id(), self.clocks.lamport, self.clocks.vc()
            )
            msg_ids.append(msg.msg_id)
            reason = self.links[to].send(self.codec.encode_message(to, msg))
            if reason is not None:
                failures.append((to, msg.msg_id, reason))
        self.totals.sent += len(msg_ids)
        self._event(Event.SEND, at=now, **extra, to=list(action.to), msg_ids=msg_ids)
        for to, msg_id, reason in failures:
            self.totals.dropped += 1
            self._event(Event.SEND_FAILED, to=to, msg_id=msg_id, reason=reason)

    def _next_msg_id(self) -> str:
        self._msg_counter += 1
        return f"{self.config.vm}-{self.incarnation}-{self._msg_counter}"

    async def _goodbye(self) -> None:
        """Tell peers we are done, then take in what they still send until they are too."""
        bye = self.codec.encode(Bye(self.config.vm))
        for link in self.links.values():
            link.send(bye)
        timeout = self.config.bye_timeout if self._stop_reason == "completed" else 0.5
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
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
            missing_byes=sorted(set(self.links) - self._byes),
            rate_configured=self.config.rate,
            rate_achieved=achieved / self.config.time_scale if achieved else None,
        )

    def _event(self, event: Event, *, at: float | None = None, **fields: object) -> None:
        self.log.event(event, self.clocks, len(self.inbox), at, **fields)


async def serve(config: NodeConfig) -> int:
    log_dir = Path(config.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    incarnation = next_incarnation(log_dir, config.vm)
    sink = LineSink(log_path(log_dir, config.vm, incarnation), echo=config.echo)
    log = EventLog(sink, run=config.run, vm=config.vm, incarnation=incarnation)
    try:
        return await Node(config, incarnation, log).run()
    finally:
        log.close()
