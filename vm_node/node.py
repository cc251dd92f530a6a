"""One VM in real time: the start barrier, the tick timer, the links and the orderly end.

The VM's rules are its core (vm_node.core); this shell drives it with the
wall clock, the event loop's timers and real sockets. Frames arrive on the
network tasks and are put on the core's inbox (or noted, for control frames);
only a tick changes the clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
import time

from vm_node.config import NodeConfig
from vm_node.core import VmCore
from vm_node.errors import BarrierTimeout
from vm_node.eventlog import EventLog
from vm_node.outbox import Outbox
from vm_node.pacing import Ticker
from vm_node.peerlink import PeerLink, barrier_heartbeat
from vm_node.priority import release_realtime
from vm_node.receiver import Receiver
from vm_node.resolver import Resolver
from vm_node.resume import Resume
from vm_node.vocabulary import Bye, Frame, Message, Ready
from vm_node.wire import Codec

START_MARGIN = 0.25  # seconds between the last VM being ready and the first tick
SIGNAL_GOODBYE = 0.3  # seconds to wait for peers' byes after a signal


class Node:
    def __init__(
        self, config: NodeConfig, incarnation: int, log: EventLog, resume: Resume | None = None
    ) -> None:
        self.config, self.resume = config, resume
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
        self.outbox = Outbox(self.links, self.codec, config.time_scale, self)
        self.core = VmCore(config, incarnation, log.write, self.outbox.send, resume)
        self._ticking: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._corked = False
        self._stop_reason = "completed"

    # --- events from the network tasks (never touch the clocks) ---

    def on_frame(self, frame: Frame) -> None:
        match frame:
            case Message():
                self.core.arrive(frame)
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
        self.core.bad_frame(reason, peer, sender, time.time())

    def on_peer_up(self, peer: int) -> None:
        self.core.peer_up(peer, time.time())

    def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None:
        self.core.peer_down(peer, reason, undelivered, time.time())

    def on_send_failed(self, to: int, msg_id: str, reason: str) -> None:
        self.core.send_failed(to, msg_id, reason, time.time())

    # --- the life of a VM ---

    async def run(self) -> int:
        """Barrier, ticks, goodbye. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        port = await self.receiver.start(
            self.config.host, self.config.listen_port, self.config.listen_fd
        )
        self.core.start(port, time.time())
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
            # the trial is under way: rejoin it
            self.core.ready(self.resume.start_at, time.time(), resumed=True)
        else:
            self.core.ready(await self._agree_on_start(), time.time())
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
        period = self.config.tick_period
        origin = loop.time() + (self.core.start_at - time.time())  # start_at, monotonic clock
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
        self.core.tick(k, time.time(), late)

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
        unacked = sum(link.unacked for link in self.links.values())
        missing_byes = sorted(set(self.links) - self._byes)
        self.core.stop(self._stop_reason, unacked, missing_byes, time.time())
