"""Peer links over real sockets: start address, acks, pings, silence."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from vm_node.config import PeerAddress
from vm_node.peerlink import DEAD_AFTER, PeerLink, _Stream
from vm_node.vocabulary import Message, Ping
from vm_node.wire import Codec

RUN = "unit"


class Events:
    def __init__(self) -> None:
        self.up: list[int] = []
        self.down: list[str] = []

    def on_peer_up(self, peer: int) -> None:
        self.up.append(peer)

    def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None:
        self.down.append(reason)


async def _start_then_by_name() -> tuple[list[int], list[str], list[int]]:
    peer = Codec(RUN, 1, 2)
    accepted: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n")  # the hello
        writer.write(peer.ack(0))
        accepted.append(writer)

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    asked: list[int] = []

    async def by_name(j: int, hint: str | None) -> PeerAddress:
        asked.append(j)
        return PeerAddress("127.0.0.1", port)

    events = Events()
    link = PeerLink(1, by_name, Codec(RUN, 0, 2), events, PeerAddress("127.0.0.1", port))
    task = asyncio.create_task(link.run())
    async with asyncio.timeout(5):
        await link.connected.wait()
        before = list(asked)
        accepted[0].close()  # the peer goes away: the link reconnects, by name
        while len(events.up) < 2:
            await asyncio.sleep(0.01)
    task.cancel()
    link.close()
    server.close()
    return before, events.down, asked


def test_a_link_starts_at_its_start_address_and_reconnects_by_name() -> None:
    before, down, asked = asyncio.run(_start_then_by_name())
    assert before == []  # no lookup for the first connection
    assert down == ["connection closed by peer"]
    assert asked == [1]


class ScriptedPeer:
    """A peer's server on 127.0.0.1:0: answers the hello, then acks messages and answers
    pings only while `answering`."""

    def __init__(self) -> None:
        self.codec = Codec(RUN, 1, 2)
        self.answering = True
        self.pings = 0
        self.messages = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n")  # the hello
        writer.write(self.codec.ack(0))
        while line := await reader.readline():
            frame = self.codec.decode(line.rstrip(b"\n"))
            if isinstance(frame, Message):
                self.messages += 1
            elif isinstance(frame, Ping):
                self.pings += 1
            if self.answering:
                writer.write(self.codec.ack(self.messages))


async def _linked(peer: ScriptedPeer, events: Events) -> tuple[PeerLink, asyncio.Task[None]]:
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    address = PeerAddress("127.0.0.1", server.sockets[0].getsockname()[1])

    async def by_name(j: int, hint: str | None) -> PeerAddress:
        return address

    link = PeerLink(1, by_name, Codec(RUN, 0, 2), events, address)
    task = asyncio.create_task(link.run())
    await link.connected.wait()
    link.start_ticking()
    return link, task


def _message(n: int) -> tuple[bytes, str]:
    msg_id = f"0-0-{n}"
    return Codec(RUN, 0, 2).message(1, msg_id, n, {"0": n, "1": 0}), msg_id


def test_acks_retire_the_messages_sent_and_a_peer_that_answers_stays_up() -> None:
    async def main() -> tuple[int, int, list[str]]:
        peer, events = ScriptedPeer(), Events()
        async with asyncio.timeout(10):
            link, task = await _linked(peer, events)
            for n in range(1, 4):
                assert link.send(*_message(n)) is None
            await link.flush()  # every message acknowledged
            while peer.pings < 2:  # silence on our side: pings, each answered
                await asyncio.sleep(0.05)
        task.cancel()
        link.close()
        return link.unacked, peer.messages, events.down

    unacked, delivered, down = asyncio.run(main())
    assert (unacked, delivered, down) == (0, 3, [])


def test_a_peer_that_falls_silent_is_declared_down_with_its_messages_undelivered() -> None:
    class Undelivered(Events):
        def __init__(self) -> None:
            super().__init__()
            self.lost: list[str] = []

        def on_peer_down(self, peer: int, reason: str, undelivered: list[str]) -> None:
            super().on_peer_down(peer, reason, undelivered)
            self.lost += undelivered

    async def main() -> tuple[list[str], list[str], int]:
        peer, events = ScriptedPeer(), Undelivered()
        async with asyncio.timeout(10):
            link, task = await _linked(peer, events)
            peer.answering = False
            link.send(*_message(1))
            while not events.down:
                await asyncio.sleep(0.05)
        task.cancel()
        link.close()
        return events.down, events.lost, peer.pings

    down, lost, pings = asyncio.run(main())
    assert down == [f"no answer for {DEAD_AFTER:g} s"]
    assert lost == ["0-0-1"]
    assert pings >= 1


def test_hellos_left_unanswered_leave_no_future_exception_unretrieved() -> None:
    """A peer too busy to answer: the link gives up on each attempt (one closed by the peer,
    one that outlasts the answer timeout) and tries again, leaving nothing behind."""

    async def main() -> tuple[int, list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        unhandled: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _, context: unhandled.append(context))
        attempts: asyncio.Queue[int] = asyncio.Queue()
        hellos = 0

        async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal hellos
            await reader.readuntil(b"\n")  # the hello
            hellos += 1
            if hellos % 2 == 0:  # wait until the link gives up on us
                await reader.read()
            writer.close()
            await attempts.put(hellos)

        server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
        where = PeerAddress("127.0.0.1", server.sockets[0].getsockname()[1])

        async def by_name(j: int, hint: str | None) -> PeerAddress:
            return where

        link = PeerLink(1, by_name, Codec(RUN, 0, 2), Events(), where, first_answer=0.2)
        task = asyncio.create_task(link.run())
        async with asyncio.timeout(30):
            for _ in range(4):
                await attempts.get()
                link.hint("127.0.0.1")  # as a peer's own hello would: try again now
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        link.close()
        server.close()
        del task
        gc.collect()  # a future's unretrieved exception is reported as it is collected
        await asyncio.sleep(0)
        return hellos, unhandled

    tried, unhandled = asyncio.run(main())
    assert tried >= 4
    assert unhandled == []


def test_a_connection_that_ends_before_its_hello_is_answered_leaves_its_answer_empty() -> None:
    """The link may have stopped waiting for the answer (a timeout, a cancelled connect):
    the answer then must not hold an exception that nobody will retrieve."""

    async def main() -> tuple[object, str]:
        link = PeerLink(1, lambda j, hint: asyncio.sleep(0), Codec(RUN, 0, 2), Events())
        stream = _Stream(asyncio.get_running_loop(), link)
        stream.connection_lost(None)
        return stream.answer.result(), stream.ended.result()

    assert asyncio.run(main()) == (None, "connection closed by peer")


def test_a_peer_heard_as_the_silence_timeout_fires_is_not_an_error() -> None:
    """The timeout of a spell of silence has fired, and before the link's task wakes, the
    peer's bytes arrive: the stream leaves the spell alone (it cannot be moved any more)."""

    async def main() -> list[dict[str, object]]:
        loop = asyncio.get_running_loop()
        unhandled: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _, context: unhandled.append(context))
        link = PeerLink(1, lambda j, hint: asyncio.sleep(0), Codec(RUN, 0, 2), Events())
        stream = _Stream(loop, link)
        stream.answer.set_result(b"")  # the hello was answered: what follows are acks
        stream.get_buffer(-1)[:1] = b"\n"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(loop.time()) as spell:  # fires on the next turn
                stream.spell, stream.deadline = spell, loop.time()
                loop.call_soon(stream.buffer_updated, 1)  # after the timeout, before us
                await asyncio.sleep(1)
        return unhandled

    assert asyncio.run(main()) == []
