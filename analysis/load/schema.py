"""What a log line must look like: typed columns, and the start, ready and stop lines.

Every check raises `Malformed` with a reason that names the key and the value,
which is what a quarantined line reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from analysis.load.columns import Ints, Totals, VmConfig

NUMBER = frozenset({int, float})
INT = frozenset({int})
STR = frozenset({str})
LIST = frozenset({list})


class Malformed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def start_config(record: dict[str, Any]) -> VmConfig:
    config = record.get("config")
    if not isinstance(config, dict):
        raise Malformed("start line lacks its 'config' object")
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
        raise Malformed(f"start line's config lacks {e.args[0]!r}") from None


def ready_start_at(record: dict[str, Any]) -> float:
    if "start_at" not in record:
        raise Malformed("ready line lacks 'start_at'")
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
        )
    except KeyError as e:
        raise Malformed(f"stop line lacks {e.args[0]!r}") from None


def vector_clocks(vcs: tuple[Any, ...], keys: tuple[str, ...]) -> Ints:
    try:
        shapes = set(map(tuple, vcs))
        flat = list(chain.from_iterable(map(dict.values, vcs)))
    except TypeError:
        raise Malformed("vc is not an object") from None
    if shapes != {keys}:
        bad = next(s for s in shapes if s != keys)
        raise Malformed(f"vc keys {list(bad)} are not the run's VMs {list(keys)}")
    return ints(flat, "vc").reshape(len(vcs), len(keys))


def same(values: tuple[Any, ...], want: int, key: str, source: str) -> None:
    require(values, INT, key)
    if set(values) != {want}:
        bad = next(v for v in values if v != want)
        raise Malformed(f"{key} {bad} does not match {source}")


def require(values: Sequence[Any], types: frozenset[type], key: str) -> None:
    if not set(map(type, values)) <= types:
        bad = next(v for v in values if type(v) not in types)
        want = " or ".join(sorted(t.__name__ for t in types))
        raise Malformed(f"{key} is {type(bad).__name__} {bad!r}, expected {want}")


def ints(values: Sequence[Any], key: str) -> Ints:
    require(values, INT, key)
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        raise Malformed(f"{key} has a value beyond 64 bits") from None


def floats(values: Sequence[Any], key: str) -> Any:
    require(values, NUMBER, key)
    return np.array(values, dtype=np.float64)


def an_int(value: Any, key: str) -> int:
    require((value,), INT, key)
    return int(value)


def a_number(value: Any, key: str) -> float:
    require((value,), NUMBER, key)
    return float(value)
