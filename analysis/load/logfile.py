"""Reading one VM log into columns, a block of whole lines at a time.

A block's newlines become commas, which makes it one JSON array, decoded in one
msgspec call into the file's Structs (schema.py); its columns are then gathered
from the Structs with C-level maps. A block that holds a bad line fails as a whole and is read again
line by line, so that exactly the bad lines are quarantined, each with its
reason (reasons.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec.structs import astuple

from analysis.columns import (
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
from analysis.errors import MalformedLine
from analysis.load.reasons import other_run, reason
from analysis.load.schema import NO_TICK, FileShape, LineTypes, line_types

NEWLINE, COMMA = ord("\n"), ord(",")
BLOCK_BYTES = 128 << 10  # small enough that a block's decoded lines stay in cache while read


@dataclass(frozen=True, slots=True)
class Part:
    """Lines as columns, with their messages and edges; rows count from the trial's first."""

    lines: Lines
    sends: Messages
    receives: Receives
    failures: Messages
    drops: Messages  # `fault` lines of kind loss: sends the VM's link conditions threw away
    duplicates: Messages  # `fault` lines of kind duplicate: sends a link condition sent twice
    configs: tuple[tuple[int, VmConfig], ...]
    ready: tuple[tuple[int, float], ...]
    stops: tuple[tuple[int, Totals], ...]

    @staticmethod
    def join(parts: list[Part], vms: int) -> Part:
        """Parts one after the other, each column joined once."""
        joined: Part = _join(parts or [_part([], np.zeros(0, dtype=np.int64), {}, 0, vms, 0)])
        return joined


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
    first_line = 1
    with path.open("rb") as f:
        for array, ends in _blocks(f):
            at = first_row + read.rows
            numbers = np.arange(first_line, first_line + len(ends), dtype=np.int64)
            try:
                lines = types.array.decode(array)
                if len(lines) != len(ends):  # a line of two objects gives one more
                    raise MalformedLine("not one object a line")
                if shape.run is not None and set(map(_RUN, lines)) != {shape.run}:
                    raise MalformedLine("a line of another run")
                part = _part(lines, numbers, types.code, file_index, shape.vms, at)
            except (msgspec.DecodeError, MalformedLine):  # find the bad lines, one by one
                raw = [
                    bytes(array[start + 1 : end])
                    for start, end in zip([0, *ends[:-1]], ends, strict=True)
                ]
                lines, numbers = _line_by_line(raw, first_line, types, shape, path, read)
                part = _part(lines, numbers, types.code, file_index, shape.vms, at)
            read.add(part)
            first_line += len(ends)
    return read


def _blocks(f: BinaryIO) -> Iterator[tuple[bytearray, list[int]]]:
    """Blocks of whole lines, each as one JSON array, `[line,line,...]`, with the index in it
    where each line ends. An empty line makes two commas in a row, which is not JSON."""
    while chunk := f.read(BLOCK_BYTES):
        array = bytearray(b"[")
        array += chunk
        array += f.readline()
        if not array.endswith(b"\n"):
            array += b"\n"  # the last line of a file cut short
        text = np.frombuffer(array, dtype=np.uint8)
        ends = np.flatnonzero(text == NEWLINE)
        text[ends] = COMMA
        text[-1] = ord("]")
        yield array, ends.tolist()


def _line_by_line(
    raw: list[bytes],
    first: int,
    types: LineTypes,
    shape: FileShape,
    path: Path,
    read: LogRead,
) -> tuple[list[Any], Ints]:
    """The good lines of a block and their numbers; each bad one goes to `read`."""
    kept: list[Any] = []
    numbers: list[int] = []
    for number, line in enumerate(raw, first):
        try:
            decoded = types.line.decode(line)
            _check(decoded, types, shape)
        except msgspec.ValidationError as e:
            read.quarantine(Quarantined(path, number, reason(e, line, shape, path.name)))
        except msgspec.DecodeError as e:
            why = "empty line" if not line.strip() else f"malformed or truncated JSON ({e})"
            read.quarantine(Quarantined(path, number, why))
        except MalformedLine as e:
            read.quarantine(Quarantined(path, number, e.reason))
        else:
            kept.append(decoded)
            numbers.append(number)
    return kept, np.array(numbers, dtype=np.int64)


def _check(line: Any, types: LineTypes, shape: FileShape) -> None:
    """What a Struct cannot say: the line is of the trial's run, a send's lists agree."""
    if shape.run is not None and line.run != shape.run:
        raise MalformedLine(other_run(line.run, shape))
    if types.code[type(line)] == SEND and len(line.to) != len(line.msg_ids):
        raise MalformedLine(_UNEVEN_SEND)


_UNEVEN_SEND = "send: 'to' and 'msg_ids' differ in length"
# Every line's numbers in one pass, into a row of this dtype each.
_NUMBERS = attrgetter("timestamp", "seq", "lamport", "queue_len", "tick", "behind_s")
_NUMBERS_DTYPE = np.dtype(
    [
        ("timestamp", np.float64),
        ("seq", np.int64),
        ("lamport", np.int64),
        ("queue_len", np.int64),
        ("tick", np.int64),
        ("behind_s", np.float64),
    ]
)
_VC = attrgetter("vc")
_RUN = attrgetter("run")
_RECEIVED = attrgetter("sender", "msg_lamport", "jump")
_TO = attrgetter("to")
_MSG_ID = attrgetter("msg_id")
_MSG_IDS = attrgetter("msg_ids")


def _part(
    lines: list[Any], line_numbers: Ints, code: dict[type, int], file_index: int, vms: int, at: int
) -> Part:
    """The columns of `lines`, whose first is trial row `at`; MalformedLine on a send whose
    lists differ in length (only a block decoded in one call can still hold one)."""
    n = len(lines)
    codes = np.fromiter(map(code.__getitem__, map(type, lines)), np.int8, count=n)
    numbers = np.fromiter(map(_NUMBERS, lines), _NUMBERS_DTYPE, count=n)
    vc = np.fromiter(chain.from_iterable(map(astuple, map(_VC, lines))), np.int64, count=n * vms)
    not_ticks = ~is_tick(codes)  # a line that is not a tick may carry the keys all the same
    numbers["tick"][not_ticks] = NO_TICK
    numbers["behind_s"][not_ticks] = 0.0
    faults = _rows(codes, FAULT)
    return Part(
        lines=Lines(
            file=np.full(n, file_index, dtype=np.int64),
            line=line_numbers,
            event=codes,
            timestamp=numbers["timestamp"],
            seq=numbers["seq"],
            lamport=numbers["lamport"],
            queue_len=numbers["queue_len"],
            tick=numbers["tick"],
            behind=numbers["behind_s"],
            vc=vc.reshape(n, vms),
        ),
        sends=_sends(lines, _rows(codes, SEND), at),
        receives=_receives(lines, _rows(codes, RECEIVE), at),
        failures=_failures(lines, _rows(codes, SEND_FAILED), at),
        drops=_failures(lines, _of_kind(lines, faults, "loss"), at),
        duplicates=_failures(lines, _of_kind(lines, faults, "duplicate"), at),
        configs=tuple((at + i, lines[i].config) for i in _rows(codes, START).tolist()),
        ready=tuple((at + i, lines[i].start_at) for i in _rows(codes, READY).tolist()),
        stops=tuple((at + i, _totals(lines[i])) for i in _rows(codes, STOP).tolist()),
    )


def _rows(codes: npt.NDArray[np.int8], code: int) -> Ints:
    return np.flatnonzero(codes == code)


def _pick(lines: list[Any], rows: Ints) -> list[Any]:
    return list(map(lines.__getitem__, rows.tolist()))


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


def _join(parts: list[Any]) -> Any:
    """Dataclasses of columns one after the other, field by field."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    if isinstance(parts[0], tuple):
        return tuple(chain.from_iterable(parts))
    return type(parts[0])(*(_join([getattr(p, f.name) for p in parts]) for f in fields(parts[0])))
