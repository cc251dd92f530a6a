"""Reading one block of a log file into columns, quarantining every line that breaks the schema.

Speed matters (a million lines a second), so a block of whole lines is decoded
in one call by msgspec into the narrow Structs of the vocabulary (block.py).
A block that holds a bad line is read again line by line with the same
Structs, and each bad line is quarantined with msgspec's reason in words
(reasons.py). The cyclic garbage collector is paused while the many small
objects are alive: they hold no cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from analysis.load.block import decode_block, decode_lines
from analysis.load.columns import Lines, Quarantined
from analysis.load.narrow import FileShape, line_types
from analysis.load.part import Part
from analysis.load.plan import ArrayBuffer, Block
from analysis.load.reasons import reason


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


def read_block(
    expected: Expected,
    block: Block,
    buffer: ArrayBuffer,
    place_at: Callable[[Lines, int], None],
    keep: int = 1000,
) -> BlockRead:
    """Read a block of `expected.path` through `buffer`, its columns to `place_at(lines, row)`;
    keep at most `keep` quarantined lines."""
    parts: list[tuple[int, Part]] = []
    quarantined: list[Quarantined] = []
    count = 0

    def quarantine(line: int, raw: bytes, why: str | msgspec.ValidationError) -> None:
        nonlocal count
        count += 1
        if len(quarantined) < keep:
            if isinstance(why, msgspec.ValidationError):
                why = reason(why, raw, shape, expected.path.name)
            quarantined.append(Quarantined(expected.path, line, why))

    def place(lines: Lines, part: Part) -> None:
        at = block.row + sum(p.rows for _, p in parts)
        place_at(lines, at)
        parts.append((at, part))

    shape = FileShape(expected.vm, expected.incarnation, expected.run, len(expected.vc_keys))
    types = line_types(shape)
    array = buffer.json_array(block, expected.path)
    numbers = np.arange(block.first_line, block.first_line + block.lines, dtype=np.int64)
    with _gc_paused():
        decoded = decode_block(array, numbers, types, expected.file_index, len(expected.vc_keys))
        if decoded is not None:
            place(*decoded)
        else:  # the slow path: find each bad line and say what is wrong
            body = block.read(expected.path)
            vms = len(expected.vc_keys)
            kept = decode_lines(body, block.first_line, types, expected.file_index, vms, quarantine)
            if kept is not None:
                place(*kept)
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
