"""A link goes to the start address without a name lookup; by name once it has been up."""

from __future__ import annotations

import asyncio

from vm_node.config import PeerAddress
from vm_node.peerlink import PeerLink
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
