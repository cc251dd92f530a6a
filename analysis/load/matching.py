"""Each message matched to the first send that carried its msg_id.

Half a million Python strings in a dict cost 0.17 s on 1M lines, mostly cache
misses. The msg_ids are compared as fixed-width numpy byte strings instead
(`keys`, made where the lines are read, so on both cores): each message is
looked up among the sends by a hash of its bytes, in sorted order, and every
pair found is confirmed byte by byte. numpy strings drop trailing NULs and
are as wide as the longest msg_id, so msg_ids that end in NUL, very long ones
or ones beyond ASCII (a broken log), and hash collisions, take the dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.load.columns import Ints

MAX_WIDTH = 64  # characters: the wire's longest msg_id
Keys = npt.NDArray[np.bytes_]  # msg_ids as fixed-width ASCII
_Words = npt.NDArray[np.unsignedinteger[Any]]  # a msg_id's bytes in words, a row per msg_id


def keys(msg_ids: tuple[str, ...]) -> Keys | None:
    """`msg_ids` as numpy byte strings, or None where that would lose or waste something."""
    lengths = np.fromiter(map(len, msg_ids), dtype=np.int64, count=len(msg_ids))
    width = int(lengths.max(initial=1))
    if width > MAX_WIDTH:
        return None
    try:
        text = np.array(msg_ids, dtype=f"S{width}")
    except UnicodeEncodeError:
        return None
    return text if np.array_equal(np.char.str_len(text), lengths) else None  # no NUL lost


def match(
    sends: tuple[str, ...], others: Sequence[tuple[str, ...]], keyed: Sequence[Keys | None]
) -> tuple[Ints, list[Ints]]:
    """The indices of the sends whose msg_id an earlier send carried; and for each msg_id of
    each of `others`, the index of the first send of it, or -1. `keyed`: the keys of the
    sends and of each of `others`, where they have them."""
    words = _as_words(keyed)
    found = None if words is None or not len(sends) else _by_hash(words[0], words[1:])
    return found if found is not None else _by_dict(sends, others)


def _as_words(keyed: Sequence[Keys | None]) -> list[_Words] | None:
    """Every column's keys as rows of words of one width, as wide as divides it."""
    if any(k is None for k in keyed):
        return None
    width = max(k.dtype.itemsize for k in keyed if k is not None)
    word = next(size for size in (8, 4, 2, 1) if width % size == 0)
    return [
        k.astype(f"S{width}", copy=False).view(f"u{word}").reshape(len(k), width // word)
        for k in keyed
        if k is not None
    ]


def _by_hash(sends: _Words, others: list[_Words]) -> tuple[Ints, list[Ints]] | None:
    """As `match`, or None on a hash collision."""
    hashes = _hash(sends)
    order = np.argsort(hashes)  # not stable: quicker, and equal hashes are sorted out below
    ordered = hashes[order]
    starts = np.ones(len(order), dtype=bool)  # where a hash begins in `ordered`
    starts[1:] = ordered[1:] != ordered[:-1]
    # at every place in `ordered`, the earliest send of its hash: it stands for the others
    earliest = np.minimum.reduceat(order, np.flatnonzero(starts))[np.cumsum(starts) - 1]
    later = np.flatnonzero(order != earliest)
    if not _same(sends, order[later], sends, earliest[later]):
        return None
    matches = []
    for other in others:
        hashes = _hash(other)
        by_hash = np.argsort(hashes)  # searching in sorted order walks the sends forward
        at = np.empty(len(other), dtype=np.int64)
        at[by_hash] = np.searchsorted(ordered, hashes[by_hash])  # where each hash begins
        np.minimum(at, len(ordered) - 1, out=at)
        found = np.flatnonzero(ordered[at] == hashes)
        index = np.full(len(other), -1, dtype=np.int64)
        index[found] = earliest[at[found]]
        if not _same(other, found, sends, index[found]):
            return None
        matches.append(index)
    return np.sort(order[later]), matches


def _hash(words: _Words) -> npt.NDArray[np.uint64]:
    """FNV-1a over the words of each row."""
    mixed = np.full(len(words), 0xCBF29CE484222325, dtype=np.uint64)
    for column in words.T:
        mixed ^= column
        mixed *= np.uint64(0x100000001B3)
    return mixed


def _same(a: _Words, rows_a: Ints, b: _Words, rows_b: Ints) -> bool:
    """Whether each row of `a` has the bytes of its row of `b`."""
    return all(np.array_equal(a[rows_a, j], b[rows_b, j]) for j in range(a.shape[1]))


def _by_dict(sends: tuple[str, ...], others: Sequence[tuple[str, ...]]) -> tuple[Ints, list[Ints]]:
    first = dict(zip(sends[::-1], range(len(sends) - 1, -1, -1), strict=True))  # earliest wins
    repeated = np.zeros(0, dtype=np.int64)
    if len(first) < len(sends):  # some msg_id was sent twice: find which sends repeat one
        earliest = np.fromiter(map(first.__getitem__, sends), dtype=np.int64, count=len(sends))
        repeated = np.flatnonzero(earliest != np.arange(len(sends)))
    return repeated, [
        np.fromiter(map(first.get, some, repeat(-1)), dtype=np.int64, count=len(some))
        for some in others
    ]
