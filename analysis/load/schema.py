"""What a log line must look like: typed columns, and the start, ready and stop lines.

Every check raises `MalformedLine` with a reason that names the key and the value,
which is what a quarantined line reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from analysis.errors import MalformedLine
from analysis.load.columns import Ints, Messages, Receives, Totals, VmConfig

NUMBER = frozenset({int, float})
INT = frozenset({int})
STR = frozenset({str})
LIST = frozenset({list})


def start_config(record: dict[str, Any]) -> VmConfig:
    config = record.get("config")
    if not isinstance(config, dict):
        raise MalformedLine("start line lacks its 'config' object")
    try:
        return VmConfig(
            vms=an_int(config["vms"], "config.vms"),
            rate=a_number(config["rate"], "config.rate"),
            time_scale=a_number(config.get("time_scale", 1.0), "config.time_scale"),
            duration=a_number(config["duration"], "config.duration"),
            event_range=None
            if config.get("event_range") is None
            else an_int(config["event_range"], "config.event_range"),
            start_at=None
            if config.get("start_at") is None
            else a_number(config["start_at"], "config.start_at"),
        )
    except KeyError as e:
        raise MalformedLine(f"start line's config lacks {e.args[0]!r}") from None


def ready_start_at(record: dict[str, Any]) -> float:
    if "start_at" not in record:
        raise MalformedLine("ready line lacks 'start_at'")
    return a_number(record["start_at"], "start_at")


def stop_totals(record: dict[str, Any]) -> Totals:
    try:
        return Totals(
            ticks=an_int(record["ticks"], "ticks"),
            sent=an_int(record["sent"], "sent"),
            received=an_int(record["received"], "received"),
            dropped=an_int(record["dropped"], "dropped"),
            queue_len=an_int(record["queue_len"], "queue_len"),
            reason=record.get("reason"),
            missing_byes=_vm_ids(record.get("missing_byes") or [], "missing_byes"),
        )
    except KeyError as e:
        raise MalformedLine(f"stop line lacks {e.args[0]!r}") from None


def _vm_ids(values: Any, key: str) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise MalformedLine(f"{key} is {type(values).__name__} {values!r}, expected a list")
    require(values, INT, key)
    return tuple(values)


def vector_clocks(vcs: tuple[Any, ...], keys: tuple[str, ...]) -> Ints:
    try:
        shapes = set(map(tuple, vcs))
        flat = list(chain.from_iterable(map(dict.values, vcs)))
    except TypeError:
        raise MalformedLine("vc is not an object") from None
    if shapes != {keys}:
        bad = next(s for s in shapes if s != keys)
        raise MalformedLine(f"vc keys {list(bad)} are not the run's VMs {list(keys)}")
    return ints(flat, "vc").reshape(len(vcs), len(keys))


def same(values: tuple[Any, ...], want: int, key: str, source: str) -> None:
    require(values, INT, key)
    if set(values) != {want}:
        bad = next(v for v in values if v != want)
        raise MalformedLine(f"{key} {bad} does not match {source}")


def require(values: Sequence[Any], types: frozenset[type], key: str) -> None:
    if not set(map(type, values)) <= types:
        bad = next(v for v in values if type(v) not in types)
        want = " or ".join(sorted(t.__name__ for t in types))
        raise MalformedLine(f"{key} is {type(bad).__name__} {bad!r}, expected {want}")


def ints(values: Sequence[Any], key: str) -> Ints:
    require(values, INT, key)
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise MalformedLine(f"{key} has a value beyond 64 bits") from None


def floats(values: Sequence[Any], key: str) -> Any:
    require(values, NUMBER, key)
    return np.array(values, dtype=np.float64)


def an_int(value: Any, key: str) -> int:
    require((value,), INT, key)
    return int(value)


def a_number(value: Any, key: str) -> float:
    require((value,), NUMBER, key)
    return float(value)


# The messages of a batch: `rows` are the lines of one event kind.

_RECEIVE = itemgetter("from", "msg_id", "msg_lamport", "jump")
_SEND = itemgetter("to", "msg_ids")
_FAILED = itemgetter("to", "msg_id")


def pick(records: list[Any], rows: Ints) -> list[dict[str, Any]]:
    return list(map(records.__getitem__, rows.tolist()))


def field_values(getter: itemgetter[Any], records: list[dict[str, Any]]) -> list[Any]:
    try:
        return list(map(getter, records))
    except KeyError as e:
        event = records[0].get("event")
        raise MalformedLine(f"{event} line lacks {e.args[0]!r}") from None


def _columns(getter: itemgetter[Any], records: list[dict[str, Any]]) -> Sequence[tuple[Any, ...]]:
    return list(zip(*field_values(getter, records), strict=True))


def sends(records: list[Any], rows: Ints) -> Messages:
    if not len(rows):
        return _no_messages()
    tos, ids = _columns(_SEND, pick(records, rows))
    if not set(map(type, tos)) | set(map(type, ids)) <= LIST:
        raise MalformedLine("send: 'to' and 'msg_ids' must be lists")
    counts = list(map(len, tos))
    if counts != list(map(len, ids)):
        raise MalformedLine("send: 'to' and 'msg_ids' differ in length")
    flat_ids = list(chain.from_iterable(ids))
    require(flat_ids, STR, "msg_ids")
    return Messages(
        row=np.repeat(rows.astype(np.int64), counts),
        peer=ints(list(chain.from_iterable(tos)), "to"),
        msg_id=tuple(flat_ids),
    )


def receives(records: list[Any], rows: Ints) -> Receives:
    if not len(rows):
        empty = np.zeros(0, dtype=np.int64)
        return Receives(_no_messages(), empty, empty)
    senders, ids, msg_lamports, jumps = _columns(_RECEIVE, pick(records, rows))
    require(ids, STR, "msg_id")
    return Receives(
        messages=Messages(rows.astype(np.int64), ints(senders, "from"), ids),
        msg_lamport=ints(msg_lamports, "msg_lamport"),
        jump=ints(jumps, "jump"),
    )


def failures(records: list[Any], rows: Ints) -> Messages:
    if not len(rows):
        return _no_messages()
    tos, ids = _columns(_FAILED, pick(records, rows))
    require(ids, STR, "msg_id")
    return Messages(rows.astype(np.int64), ints(tos, "to"), ids)


def faults(records: list[Any], rows: Ints, kind: str) -> Ints:
    """The `fault` rows of one kind: a message a link condition lost (loss) or sent twice."""
    return np.array([r for r in rows.tolist() if records[r].get("kind") == kind], dtype=np.int64)


def _no_messages() -> Messages:
    return Messages(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), ())
