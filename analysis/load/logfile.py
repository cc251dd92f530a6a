"""Reading one VM log into columns, block by block, quarantining each line that breaks the schema.

A block of whole lines (about a megabyte) is joined into one JSON array and
decoded in one msgspec call into the file's Structs (schema.py); the columns
are then gathered from the Structs with C-level maps. A block that holds a bad
line fails as a whole and is read again line by line, so that exactly the bad
lines are quarantined, each with its reason (reasons.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from pathlib import Path
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
    Quarantined,
    Receives,
    Totals,
    VmConfig,
    is_tick,
)
from analysis.load.reasons import reason
from analysis.load.schema import FileShape, LineTypes, line_types

BLOCK_BYTES = 1 << 20  # large enough that the per-call costs vanish, small beside the columns


@dataclass(frozen=True, slots=True)
class Part:
    """Some lines of one file as columns, with their messages and edges; rows are trial rows."""

    lines: Lines
    sends: Messages
    receives: Receives
    failures: Messages
    drops: Messages  # `fault` lines of kind loss: sends the VM's link conditions threw away
    duplicates: Messages  # `fault` lines of kind duplicate: sends a link condition sent twice
    configs: tuple[tuple[int, VmConfig], ...]
    ready: tuple[tuple[int, float], ...]
    stops: tuple[tuple[int, Totals], ...]


@dataclass(slots=True)
class LogRead:
    """What one file gave: its parts in line order, and the first `keep` of its bad lines."""

    keep: int
    parts: list[Part] = field(default_factory=list)
    rows: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    quarantined_count: int = 0

    def add(self, part: Part) -> None:
        self.parts.append(part)
        self.rows += len(part.lines)

    def quarantine(self, bad: Quarantined) -> None:
        self.quarantined_count += 1
        if len(self.quarantined) < self.keep:
            self.quarantined.append(bad)


def read_log(path: Path, shape: FileShape, file_index: int, first_row: int, keep: int) -> LogRead:
    """Every line of `path` as columns whose rows start at `first_row`."""
    types = line_types(shape)
    read = LogRead(keep)
    for first_line, body in _blocks(path):
        at = first_row + read.rows
        try:
            lines = types.array.decode(b"[" + body.replace(b"\n", b",") + b"]")
            if len(lines) == body.count(b"\n") + 1:  # a line of two objects gives one more
                numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
                read.add(_part(lines, numbers, types, file_index, shape.vms, at))
                continue
        except (msgspec.DecodeError, MalformedLine):  # an empty line makes two commas in a row
            pass
        lines, numbers = _line_by_line(body, first_line, types, shape, path, read)
        if lines:
            read.add(_part(lines, numbers, types, file_index, shape.vms, at))
    return read


def _blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(first line number, whole lines without the newline that ends the last)."""
    with path.open("rb") as f:
        first = 1
        while chunk := f.read(BLOCK_BYTES):
            body = (chunk + f.readline()).removesuffix(b"\n")
            yield first, body
            first += body.count(b"\n") + 1


def _line_by_line(
    body: bytes,
    first: int,
    types: LineTypes,
    shape: FileShape,
    path: Path,
    read: LogRead,
) -> tuple[list[Any], Ints]:
    """The good lines of a block and their numbers; each bad one goes to `read`."""
    kept: list[Any] = []
    numbers: list[int] = []
    for number, raw in enumerate(body.split(b"\n"), first):
        try:
            line = types.line.decode(raw)
            _check(line, types)
        except msgspec.ValidationError as e:
            read.quarantine(Quarantined(path, number, reason(e, raw, shape, path.name)))
        except msgspec.DecodeError as e:
            why = "empty line" if not raw.strip() else f"malformed or truncated JSON ({e})"
            read.quarantine(Quarantined(path, number, why))
        except MalformedLine as e:
            read.quarantine(Quarantined(path, number, e.reason))
        else:
            kept.append(line)
            numbers.append(number)
    return kept, np.array(numbers, dtype=np.int64)


def _check(line: Any, types: LineTypes) -> None:
    """What a Struct cannot say: a send's lists agree."""
    if types.code[type(line)] == SEND and len(line.to) != len(line.msg_ids):
        raise MalformedLine(_UNEVEN_SEND)


_UNEVEN_SEND = "send: 'to' and 'msg_ids' differ in length"
_COMMON = attrgetter("timestamp", "seq", "lamport", "queue_len")
_COMMON_DTYPE = np.dtype(
    [("timestamp", np.float64), ("seq", np.int64), ("lamport", np.int64), ("queue_len", np.int64)]
)
_VC = attrgetter("vc")
_TICK = attrgetter("tick")
_BEHIND = attrgetter("behind_s")
_RECEIVED = attrgetter("sender", "msg_lamport", "jump")
_TO = attrgetter("to")
_MSG_ID = attrgetter("msg_id")
_MSG_IDS = attrgetter("msg_ids")


def _part(
    lines: list[Any], numbers: Ints, types: LineTypes, file_index: int, vms: int, at: int
) -> Part:
    """The columns of `lines`, whose first is trial row `at`; MalformedLine on a send whose
    lists differ in length (only a block decoded in one call can still hold one)."""
    n = len(lines)
    codes = np.fromiter(map(types.code.__getitem__, map(type, lines)), np.int8, count=n)
    common = np.fromiter(map(_COMMON, lines), _COMMON_DTYPE, count=n)
    vc = np.fromiter(chain.from_iterable(map(astuple, map(_VC, lines))), np.int64, count=n * vms)
    tick = np.full(n, -1, dtype=np.int64)  # -1 and 0 behind on lines that are not ticks
    behind = np.zeros(n, dtype=np.float64)
    ticks = np.flatnonzero(is_tick(codes))
    ticked = _pick(lines, ticks)
    tick[ticks] = np.fromiter(map(_TICK, ticked), np.int64, count=len(ticks))
    behind[ticks] = np.fromiter(map(_or_zero, map(_BEHIND, ticked)), np.float64, len(ticks))
    faults = _rows(codes, FAULT)
    return Part(
        lines=Lines(
            file=np.full(n, file_index, dtype=np.int64),
            line=numbers,
            event=codes,
            timestamp=common["timestamp"].copy(),
            seq=common["seq"].copy(),
            lamport=common["lamport"].copy(),
            queue_len=common["queue_len"].copy(),
            tick=tick,
            behind=behind,
            vc=vc.reshape(n, vms),
        ),
        sends=_sends(lines, _rows(codes, SEND), at),
        receives=_receives(lines, _rows(codes, RECEIVE), at),
        failures=_failures(lines, _rows(codes, SEND_FAILED), at),
        drops=_failures(lines, _of_kind(lines, faults, "loss"), at),
        duplicates=_failures(lines, _of_kind(lines, faults, "duplicate"), at),
        configs=tuple((at + i, lines[i].config) for i in _rows(codes, START)),
        ready=tuple((at + i, float(lines[i].start_at)) for i in _rows(codes, READY)),
        stops=tuple((at + i, _totals(lines[i])) for i in _rows(codes, STOP)),
    )


def _rows(codes: npt.NDArray[np.int8], code: int) -> Ints:
    return np.flatnonzero(codes == code)


def _pick(lines: list[Any], rows: Ints) -> list[Any]:
    return list(map(lines.__getitem__, rows.tolist()))


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else value


def _sends(lines: list[Any], rows: Ints, at: int) -> Messages:
    sent = _pick(lines, rows)
    tos = list(map(_TO, sent))
    ids = list(map(_MSG_IDS, sent))
    counts = np.fromiter(map(len, tos), dtype=np.int64, count=len(tos))
    if not np.array_equal(counts, np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))):
        raise MalformedLine(_UNEVEN_SEND)
    total = int(counts.sum())
    return Messages(
        row=np.repeat(rows + at, counts),
        peer=np.fromiter(chain.from_iterable(tos), dtype=np.int64, count=total),
        msg_id=tuple(chain.from_iterable(ids)),
    )


def _receives(lines: list[Any], rows: Ints, at: int) -> Receives:
    got = _pick(lines, rows)
    numbers = np.fromiter(chain.from_iterable(map(_RECEIVED, got)), np.int64, count=3 * len(got))
    numbers = numbers.reshape(len(got), 3)
    return Receives(
        messages=Messages(rows + at, numbers[:, 0], tuple(map(_MSG_ID, got))),
        msg_lamport=numbers[:, 1],
        jump=numbers[:, 2],
    )


def _failures(lines: list[Any], rows: Ints, at: int) -> Messages:
    failed = _pick(lines, rows)
    peers = np.fromiter(map(_TO, failed), dtype=np.int64, count=len(failed))
    return Messages(rows + at, peers, tuple(map(_MSG_ID, failed)))


def _of_kind(lines: list[Any], rows: Ints, kind: str) -> Ints:
    return np.array([row for row in rows.tolist() if lines[row].kind == kind], dtype=np.int64)


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
