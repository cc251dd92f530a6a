"""Reading one log file into columns, quarantining every line that breaks the schema.

Speed matters (a million lines a second), so a file is read in blocks of
whole lines, each decoded in one call by msgspec into narrow typed Structs
(block.py). A block that holds a bad line is read again line by line: decoded
with orjson and checked column by column (schema.py); a batch that fails is
split in halves until the bad lines stand alone, and those are quarantined
with the reason the column checks give. The cyclic garbage collector is paused
while the many small objects are alive: they hold no cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from analysis.errors import MalformedLine
from analysis.load.block import decode_block
from analysis.load.columns import (
    CODE,
    FAULT,
    READY,
    RECEIVE,
    SEND,
    SEND_FAILED,
    START,
    STOP,
    TICK_CODES,
    Ints,
    Lines,
    Quarantined,
)
from analysis.load.narrow import FileShape, line_types
from analysis.load.part import Part
from analysis.load.plan import Block
from analysis.load.schema import (
    failures,
    faults,
    field_values,
    floats,
    ints,
    pick,
    ready_start_at,
    receives,
    same,
    sends,
    start_config,
    stop_totals,
    vector_clocks,
)
from analysis.load.sink import LinesSink
from vm_node.vocabulary import COMMON_KEYS

_COMMON = itemgetter(*COMMON_KEYS)
_TICK = itemgetter("tick")
_BEHIND = b'"behind_s"'


@dataclass(frozen=True, slots=True)
class Expected:
    """What every line of a file must agree with."""

    path: Path
    file_index: int
    vm: int
    incarnation: int
    run: str | None  # None: any run id
    vc_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BlockRead:
    """What one block gave: its parts with the sink row of each, and its bad lines."""

    parts: tuple[tuple[int, Part], ...]  # (at, part), in line order
    quarantined: tuple[Quarantined, ...]
    quarantined_count: int


def read_block(expected: Expected, block: Block, sink: LinesSink, keep: int = 1000) -> BlockRead:
    """Read a block of `expected.path` into `sink`; keep at most `keep` quarantined lines."""
    parts: list[tuple[int, Part]] = []
    quarantined: list[Quarantined] = []
    count = 0

    def quarantine(line: int, reason: str) -> None:
        nonlocal count
        count += 1
        if len(quarantined) < keep:
            quarantined.append(Quarantined(expected.path, line, reason))

    def place(lines: Lines, part: Part) -> None:
        at = block.row + sum(p.rows for _, p in parts)
        sink.place(lines, at)
        parts.append((at, part))

    types = line_types(
        FileShape(expected.vm, expected.incarnation, expected.run, len(expected.vc_keys))
    )
    array = block.json_array(expected.path)
    numbers = np.arange(block.first_line, block.first_line + block.lines, dtype=np.int64)
    with _gc_paused():
        decoded = decode_block(array, numbers, types, expected.file_index, len(expected.vc_keys))
        if decoded is not None:
            place(*decoded)
        else:  # the slow path: find each bad line and say what is wrong
            body = block.read(expected.path)
            records, numbers = _decode(body.split(b"\n"), block.first_line, quarantine)
            if records:
                _extract_or_split(records, numbers, expected, _BEHIND in body, place, quarantine)
    return BlockRead(tuple(parts), tuple(quarantined), count)


def peek(path: Path) -> dict[str, Any] | None:
    """The first line of a file as an object, or None when it is not one."""
    with path.open("rb") as f:
        first = f.readline()
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _decode(
    batch: list[bytes], first: int, quarantine: Callable[[int, str], None]
) -> tuple[list[Any], Ints]:
    try:
        return list(map(orjson.loads, batch)), np.arange(first, first + len(batch), dtype=np.int64)
    except orjson.JSONDecodeError:
        pass
    records: list[Any] = []
    numbers: list[int] = []
    for number, raw in enumerate(batch, first):
        try:
            records.append(orjson.loads(raw))
        except orjson.JSONDecodeError as e:
            what = "empty line" if not raw.strip() else f"malformed or truncated JSON ({e})"
            quarantine(number, what)
            continue
        numbers.append(number)
    return records, np.array(numbers, dtype=np.int64)


def _extract_or_split(
    records: list[Any],
    numbers: Ints,
    expected: Expected,
    late: bool,
    place: Callable[[Lines, Part], None],
    quarantine: Callable[[int, str], None],
) -> None:
    try:
        place(*_extract(records, numbers, expected, late))
    except MalformedLine as e:
        if len(records) == 1:
            quarantine(int(numbers[0]), e.reason)
            return
        mid = len(records) // 2
        _extract_or_split(records[:mid], numbers[:mid], expected, late, place, quarantine)
        _extract_or_split(records[mid:], numbers[mid:], expected, late, place, quarantine)


def _extract(
    records: list[Any], numbers: Ints, expected: Expected, late: bool
) -> tuple[Lines, Part]:
    """The columns of a batch, or MalformedLine; `late`: some line may carry behind_s."""
    n = len(records)
    try:
        rows = list(map(_COMMON, records))
    except KeyError as e:
        raise MalformedLine(f"missing required key {e.args[0]!r}") from None
    except (TypeError, IndexError):
        raise MalformedLine("not a JSON object") from None
    events, timestamps, runs, vms, incarnations, seqs, lamports, vcs, queues = zip(
        *rows, strict=True
    )
    try:
        codes = np.fromiter(map(CODE.__getitem__, events), dtype=np.int8, count=n)
    except (KeyError, TypeError):
        bad = next(e for e in events if not isinstance(e, str) or e not in CODE)
        raise MalformedLine(f"unknown event {bad!r}") from None
    same(vms, expected.vm, "vm", f"the file name {expected.path.name}")
    same(incarnations, expected.incarnation, "incarnation", f"the file name {expected.path.name}")
    if expected.run is not None and set(runs) != {expected.run}:
        bad = next(r for r in runs if r != expected.run)
        raise MalformedLine(f"run {bad!r} is not this trial's run {expected.run!r}")
    lines = Lines(
        file=np.full(n, expected.file_index, dtype=np.int64),
        line=numbers,
        event=codes,
        timestamp=floats(timestamps, "timestamp"),
        seq=ints(seqs, "seq"),
        lamport=ints(lamports, "lamport"),
        queue_len=ints(queues, "queue_len"),
        tick=np.full(n, -1, dtype=np.int64),
        behind=np.zeros(n, dtype=np.float64),
        vc=vector_clocks(vcs, expected.vc_keys),
    )
    tick_rows = np.flatnonzero(np.isin(codes, TICK_CODES))
    if len(tick_rows):
        ticked = pick(records, tick_rows)
        lines.tick[tick_rows] = ints(field_values(_TICK, ticked), "tick")
        if late:
            lines.behind[tick_rows] = floats([r.get("behind_s") or 0.0 for r in ticked], "behind_s")
    fault_rows = np.flatnonzero(codes == FAULT)
    return lines, Part(
        rows=n,
        sends=sends(records, np.flatnonzero(codes == SEND)),
        receives=receives(records, np.flatnonzero(codes == RECEIVE)),
        failures=failures(records, np.flatnonzero(codes == SEND_FAILED)),
        drops=failures(records, faults(records, fault_rows, "loss")),
        duplicates=failures(records, faults(records, fault_rows, "duplicate")),
        configs=tuple((int(i), start_config(records[i])) for i in np.flatnonzero(codes == START)),
        ready=tuple((int(i), ready_start_at(records[i])) for i in np.flatnonzero(codes == READY)),
        stops=tuple((int(i), stop_totals(records[i])) for i in np.flatnonzero(codes == STOP)),
    )
