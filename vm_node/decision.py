"""What a VM does on a tick whose inbox is empty: a pure, seeded decision."""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec


class Internal(msgspec.Struct, frozen=True, gc=False):
    pass


class Send(msgspec.Struct, frozen=True, gc=False):
    to: tuple[int, ...]


Action = Internal | Send


def decide(rng: random.Random, event_range: int, peers: Sequence[int]) -> Action:
    """Draw r in 1..event_range: 1 or 2 sends to one peer, 3 to all, else internal.

    With exactly two peers r = 1 picks the lower id and r = 2 the higher (the
    original exercise's rule); with other peer counts one peer is drawn.
    """
    r = rng.randint(1, event_range)
    if not peers or r > 3:
        return Internal()
    if r == 3:
        return Send(tuple(peers))
    if len(peers) == 2:
        return Send((sorted(peers)[r - 1],))
    return Send((rng.choice(peers),))
