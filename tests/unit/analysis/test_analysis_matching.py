"""Matching messages to sends by msg_id: the first send of a msg_id is its send."""

from __future__ import annotations

from analysis.load.runs import match


def answers(sends: tuple[str, ...], *others: tuple[str, ...]) -> tuple[list[int], list[list[int]]]:
    repeated, found = match(sends, others)
    return repeated.tolist(), [f.tolist() for f in found]


def test_messages_find_the_first_send_of_their_msg_id_and_repeats_are_named() -> None:
    sends = ("0-0-1", "1-0-1", "0-0-1", "2-0-7")
    assert answers(sends, ("2-0-7", "0-0-1", "9-9-9"), ()) == ([2], [[3, 0, -1], []])


def test_without_sends_nothing_is_found() -> None:
    assert answers((), ("0-0-1",)) == ([], [[-1]])
