"""The fast path: a block of whole lines decoded in one call into a `Part`.

The lines are joined into one JSON array and decoded by msgspec into the
narrow Structs (narrow.py), which checks every key and type in C; the columns
are then gathered with C-level maps. Any line that breaks the schema makes the
whole block fail (None), and the caller reads that block line by line to
quarantine exactly the bad lines with their reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec.structs import astuple

from analysis.errors import MalformedLine
from analysis.load.columns import (
    FAULT,
    READY,
    RECEIVE,
    SEND,
    SEND_FAILED,
    START,
    STOP,
    Ints,
    Lines,
    Messages,
    Receives,
    Totals,
)
from analysis.load.config import start_config
from analysis.load.matching import keys
from analysis.load.narrow import NUMBERS, LineTypes
from analysis.load.part import Part


def decode_block(
    array: memoryview, numbers: Ints, types: LineTypes, file_index: int, vms: int
) -> tuple[Lines, Part] | None:
    """The columns of a block's lines joined as a JSON `array` and numbered `numbers`, or None."""
    try:
        lines = types.block.decode(array)
    except msgspec.DecodeError:
        return None
    if len(lines) != len(numbers):
        return None
    try:
        return _part(lines, numbers, types, file_index, vms)
    except (OverflowError, MalformedLine):  # a clock beyond 2**53, a bad send or start line
        return None


def decode_lines(
    body: bytes,
    first: int,
    types: LineTypes,
    file_index: int,
    vms: int,
    quarantine: Callable[[int, bytes, str | msgspec.ValidationError], None],
) -> tuple[Lines, Part] | None:
    """The slow path: each line of `body` on its own; a bad one goes to `quarantine`."""
    kept: list[Any] = []
    numbers: list[int] = []
    for number, raw in enumerate(body.split(b"\n"), first):
        try:
            line = types.line.decode(raw)
            _check(line, types)
        except msgspec.ValidationError as e:
            quarantine(number, raw, e)
        except msgspec.DecodeError as e:
            what = "empty line" if not raw.strip() else f"malformed or truncated JSON ({e})"
            quarantine(number, raw, what)
        except MalformedLine as e:
            quarantine(number, raw, e.reason)
        else:
            kept.append(line)
            numbers.append(number)
    if not kept:
        return None
    rows = np.array(numbers, dtype=np.int64)
    return _part(kept, rows, types, file_index, vms, exact=True)


def _check(line: Any, types: LineTypes) -> None:
    """What a Struct cannot say: a send's lists agree, a start line's config is usable."""
    code = types.code[type(line)]
    if code == SEND and len(line.to) != len(line.msg_ids):
        raise MalformedLine("send: 'to' and 'msg_ids' differ in length")
    if code == START:
        start_config({"config": line.config})


def _part(
    lines: list[Any],
    numbers: Ints,
    types: LineTypes,
    file_index: int,
    vms: int,
    exact: bool = False,
) -> tuple[Lines, Part]:
    columns = _columns(lines, numbers, types, file_index, vms, exact)
    codes = columns.event
    faults = _rows(codes, FAULT)
    sends = _sends(lines, _rows(codes, SEND))
    receives = _receives(lines, _rows(codes, RECEIVE))
    failures = _failures(lines, _rows(codes, SEND_FAILED))
    return columns, Part(
        rows=len(lines),
        sends=sends,
        receives=receives,
        failures=failures,
        drops=_failures(lines, _of_kind(lines, faults, "loss")),
        duplicates=_failures(lines, _of_kind(lines, faults, "duplicate")),
        configs=tuple(
            (int(i), start_config({"config": lines[i].config})) for i in _rows(codes, START)
        ),
        ready=tuple((int(i), float(lines[i].start_at)) for i in _rows(codes, READY)),
        stops=tuple((int(i), _totals(lines[i])) for i in _rows(codes, STOP)),
        keys=(keys(sends.msg_id), keys(receives.messages.msg_id), keys(failures.msg_id)),
    )


_TIMESTAMP = attrgetter("timestamp")
_COUNTERS = attrgetter("seq", "lamport", "queue_len", "tick")
_BEHIND = attrgetter("behind_s")
_RECEIVED = attrgetter("sender", "msg_lamport", "jump")
_EXACT = 2**53
_VC = attrgetter("vc")


def _columns(
    lines: list[Any], numbers: Ints, types: LineTypes, file_index: int, vms: int, exact: bool
) -> Lines:
    """The lines' columns: in one pass as floats, or (`exact`) a pass per column."""
    n = len(lines)
    vc = _flat(map(astuple, map(_VC, lines)), vms * n).reshape(n, vms)
    if exact:
        codes = np.fromiter(map(types.code.__getitem__, map(type, lines)), np.int8, count=n)
        counters = _flat(map(_COUNTERS, lines), 4 * n).reshape(n, 4)
        timestamp = np.fromiter(map(_TIMESTAMP, lines), np.float64, n)
        behind = np.fromiter(map(_or_zero, map(_BEHIND, lines)), np.float64, n)
    else:
        # Floats hold integers exactly below 2**53, the clocks' bound by contract; a
        # block beyond it takes the exact path.
        width = len(NUMBERS)
        table = np.fromiter(chain.from_iterable(map(types.numbers, lines)), np.float64, width * n)
        table = table.reshape(n, width)
        if n and np.abs(table[:, 2:6]).max() >= _EXACT:
            raise OverflowError("an integer beyond what a float holds exactly")
        codes = table[:, 0].astype(np.int8)
        timestamp = table[:, 1].copy()
        counters = table[:, 2:6].astype(np.int64)
        behind = np.nan_to_num(table[:, 6], nan=0.0)  # NaN: a behind_s of null
    return Lines(
        file=np.full(n, file_index, dtype=np.int64),
        line=numbers,
        event=codes,
        timestamp=timestamp,
        seq=counters[:, 0],
        lamport=counters[:, 1],
        queue_len=counters[:, 2],
        tick=counters[:, 3],
        behind=behind,
        vc=vc,
    )


def _flat(rows: Iterable[tuple[int, ...]], count: int) -> Ints:
    return np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=count)


def _gather(items: Sequence[Any], key: str, dtype: Any = np.int64) -> npt.NDArray[Any]:
    return np.fromiter(map(attrgetter(key), items), dtype=dtype, count=len(items))


def _pick(lines: list[Any], rows: Ints) -> list[Any]:
    return list(map(lines.__getitem__, rows.tolist()))


def _rows(codes: npt.NDArray[np.int8], code: int) -> Ints:
    return np.flatnonzero(codes == code)


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else float(value)


def _sends(lines: list[Any], rows: Ints) -> Messages:
    sent = _pick(lines, rows)
    tos = list(map(attrgetter("to"), sent))
    ids = list(map(attrgetter("msg_ids"), sent))
    counts = np.fromiter(map(len, tos), dtype=np.int64, count=len(tos))
    if not np.array_equal(counts, np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))):
        raise MalformedLine("send: 'to' and 'msg_ids' differ in length")
    return Messages(
        row=np.repeat(rows, counts),
        peer=np.fromiter(chain.from_iterable(tos), dtype=np.int64, count=int(counts.sum())),
        msg_id=tuple(chain.from_iterable(ids)),
    )


def _receives(lines: list[Any], rows: Ints) -> Receives:
    got = _pick(lines, rows)
    numbers = _flat(map(_RECEIVED, got), 3 * len(got)).reshape(len(got), 3)
    return Receives(
        messages=Messages(rows, numbers[:, 0], tuple(map(attrgetter("msg_id"), got))),
        msg_lamport=numbers[:, 1],
        jump=numbers[:, 2],
    )


def _failures(lines: list[Any], rows: Ints) -> Messages:
    failed = _pick(lines, rows)
    return Messages(rows, _gather(failed, "to"), tuple(map(attrgetter("msg_id"), failed)))


def _of_kind(lines: list[Any], rows: Ints, kind: str) -> Ints:
    is_kind: Callable[[int], bool] = lambda row: lines[row].kind == kind  # noqa: E731
    return np.array(list(filter(is_kind, rows.tolist())), dtype=np.int64)


def _totals(stop: Any) -> Totals:
    return Totals(
        ticks=stop.ticks,
        sent=stop.sent,
        received=stop.received,
        dropped=stop.dropped,
        queue_len=stop.queue_len,
        reason=stop.reason,
        missing_byes=tuple(stop.missing_byes or ()),
    )
