"""Reading and doctoring single lines of a run's logs, for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

Record = dict[str, Any]


def records(path: Path) -> Iterator[tuple[int, Record]]:
    """(line number from 1, object) for every line of a log."""
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        yield number, orjson.loads(raw)


def find(path: Path, want: Callable[[Record], bool], nth: int = 0) -> tuple[int, Record]:
    """The nth line of a log that `want` accepts."""
    found = [(n, r) for n, r in records(path) if want(r)]
    assert len(found) > nth, f"no line #{nth} like that in {path}"
    return found[nth]


def doctor(path: Path, line: int, change: Callable[[Record], None]) -> None:
    """Rewrite one line of a log after `change` edits its object in place."""
    raw = path.read_bytes().splitlines()
    record = orjson.loads(raw[line - 1])
    change(record)
    raw[line - 1] = orjson.dumps(record)
    path.write_bytes(b"\n".join(raw) + b"\n")


def replace_line(path: Path, line: int, content: bytes) -> None:
    raw = path.read_bytes().splitlines()
    raw[line - 1] = content
    path.write_bytes(b"\n".join(raw) + b"\n")


def is_event(kind: str) -> Callable[[Record], bool]:
    return lambda r: r["event"] == kind
