"""Where a VM finds each peer: an explicit address, its name, or 127.0.0.1.

In containers every VM is named `vm<i>`; a peer's name resolves once its
container runs. Plain processes on one host have no such names and listen at
base_port + id.
"""

from __future__ import annotations

import asyncio
import socket

from vm_node.config import PeerAddress
from vm_node.errors import NotYetNamed


class Resolver:
    """Where peer j is: explicit; else `vm<j>:base_port` by name; else 127.0.0.1:base_port + j.

    The fallback is for plain processes on one host, where no `vm<i>` name
    resolves. Where this VM's own name resolves (containers), a peer's name
    that does not resolve yet is retried rather than looked for on 127.0.0.1.
    """

    def __init__(self, me: int, base_port: int, explicit: dict[int, PeerAddress]) -> None:
        self.me = me
        self.base_port = base_port
        self.explicit = explicit
        self._named = False  # whether our own name resolved: then peers go by name

    async def __call__(self, peer: int, hint: str | None = None) -> PeerAddress:
        """`hint`: the address the peer last connected to us from, fresher than the name.

        A name is looked up once per attempt and the connection goes to the
        address found: every lookup is a round trip to the engine's name
        server, which a starting fleet keeps busy.
        """
        if peer in self.explicit:
            return self.explicit[peer]
        if not self._named:  # once it resolved, it stays ours
            self._named = await _lookup(f"vm{self.me}", self.base_port) is not None
            if not self._named:
                return PeerAddress("127.0.0.1", self.base_port + peer)
        if hint is not None:  # the peer just called us from there: no lookup needed
            return PeerAddress(hint, self.base_port)
        # resolved afresh on every attempt: a restarted peer has a new IP
        address = await _lookup(f"vm{peer}", self.base_port)
        if address is None:
            raise NotYetNamed(f"vm{peer} does not resolve yet")
        return PeerAddress(address, self.base_port)


async def _lookup(name: str, port: int) -> str | None:
    """The first address `name` resolves to, or None."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    return str(found[0][4][0]) if found else None
