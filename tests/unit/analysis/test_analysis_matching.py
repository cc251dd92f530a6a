"""Matching messages to sends by msg_id: numpy strings, the same answers as a dict of them."""

from __future__ import annotations

import random

import numpy as np
import pytest

from analysis.load import matching
from analysis.load.matching import keys, match
from analysis.load.part import _joined


def by_dict(sends: tuple[str, ...], *others: tuple[str, ...]) -> tuple[list[int], list[list[int]]]:
    """The answer worked out the obvious way."""
    first: dict[str, int] = {}
    repeated = [i for i, m in enumerate(sends) if first.setdefault(m, i) != i]
    return repeated, [[first.get(m, -1) for m in other] for other in others]


def answers(sends: tuple[str, ...], *others: tuple[str, ...]) -> tuple[list[int], list[list[int]]]:
    repeated, found = match(sends, others, [keys(sends), *map(keys, others)])
    return repeated.tolist(), [f.tolist() for f in found]


def test_messages_find_the_first_send_of_their_msg_id_and_repeats_are_named() -> None:
    sends = ("0-0-1", "1-0-1", "0-0-1", "2-0-7")
    assert answers(sends, ("2-0-7", "0-0-1", "9-9-9"), ()) == ([2], [[3, 0, -1], []])


def test_any_msg_ids_give_what_a_dict_gives() -> None:
    rng = random.Random(5)
    alphabet = ["0", "1", "-", "a", "é", "\x00", "\U0001f600"]  # NUL: numpy drops a trailing one
    for _ in range(500):
        pool = ["".join(rng.choices(alphabet, k=rng.randint(0, 5))) for _ in range(8)]
        sends = tuple(rng.choices(pool, k=rng.randint(0, 20)))
        others = [tuple(rng.choices(pool, k=rng.randint(0, 20))) for _ in range(2)]
        assert answers(sends, *others) == by_dict(sends, *others)


def test_a_msg_id_too_long_for_numpy_strings_still_matches() -> None:
    long = "x" * (matching.MAX_WIDTH + 1)
    assert answers(("a", long), (long, "b")) == ([], [[1, -1]])


def test_hash_collisions_are_caught_and_matched_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "_hash", lambda words: np.zeros(len(words), dtype=np.uint64))
    assert answers(("a", "b", "a"), ("b", "c", "a")) == ([2], [[1, -1, 0]])
    assert answers(("a", "a"), ("a", "z")) == ([1], [[0, -1]])


def test_keys_of_blocks_of_different_widths_join_and_match() -> None:
    first, second = ("0-0-1", "0-0-2"), ("0-0-10", "1-0-1000")
    sends = first + second
    receives = ("1-0-1000", "0-0-2", "0-0-100")
    joined = _joined([keys(first), keys(second)])
    repeated, (found,) = match(sends, (receives,), [joined, keys(receives)])
    assert repeated.tolist() == [] and found.tolist() == [3, 1, -1]
    assert _joined([keys(first), keys(("x\x00",))]) is None  # one block without keys: the dict
