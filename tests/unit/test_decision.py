import random
from collections import Counter

from vm_node.decision import Internal, Send, decide


class FixedDraw(random.Random):
    """An RNG whose randint always returns r."""

    def __init__(self, r: int) -> None:
        super().__init__(0)
        self.r = r

    def randint(self, a: int, b: int) -> int:
        return self.r


def test_with_two_peers_r1_sends_to_the_lower_id_and_r2_to_the_higher() -> None:
    assert decide(FixedDraw(1), 10, [2, 0]) == Send((0,))
    assert decide(FixedDraw(2), 10, [2, 0]) == Send((2,))


def test_r3_sends_to_every_peer() -> None:
    assert decide(FixedDraw(3), 10, [0, 2, 3]) == Send((0, 2, 3))


def test_r_above_3_is_an_internal_event() -> None:
    assert all(decide(FixedDraw(r), 10, [1, 2]) == Internal() for r in range(4, 11))


def test_a_vm_without_peers_only_has_internal_events() -> None:
    assert decide(FixedDraw(1), 10, []) == Internal()


def test_the_same_seed_gives_the_same_decisions() -> None:
    def run(seed: int) -> list[object]:
        rng = random.Random(seed)
        return [decide(rng, 10, [1, 2, 3, 4]) for _ in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_draws_follow_the_event_range_shares() -> None:
    rng = random.Random(1)
    kinds = Counter(
        "internal" if isinstance(a, Internal) else len(a.to)
        for a in (decide(rng, 10, [1, 2]) for _ in range(20_000))
    )
    # P(one peer) = 2/10, P(all peers) = 1/10, P(internal) = 7/10
    assert abs(kinds[1] / 20_000 - 0.2) < 0.015
    assert abs(kinds[2] / 20_000 - 0.1) < 0.015
    assert abs(kinds["internal"] / 20_000 - 0.7) < 0.015


def test_with_many_peers_single_sends_reach_every_peer() -> None:
    rng = random.Random(3)
    targets = {
        a.to[0] for a in (decide(rng, 2, [1, 2, 3, 4]) for _ in range(500)) if isinstance(a, Send)
    }
    assert targets == {1, 2, 3, 4}
