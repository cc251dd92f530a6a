"""The part of a `start` line's config that analysis uses, checked.

The vocabulary leaves `config` an open object (the VM's whole configuration);
these are the keys analysis reads from it. A bad one raises `MalformedLine`
with a reason that names the key and the value.
"""

from __future__ import annotations

from typing import Any

from analysis.errors import MalformedLine
from analysis.load.columns import VmConfig


def start_config(record: dict[str, Any]) -> VmConfig:
    config = record.get("config")
    if not isinstance(config, dict):
        raise MalformedLine("start line lacks its 'config' object")
    try:
        return VmConfig(
            vms=_an_int(config["vms"], "config.vms"),
            rate=_a_number(config["rate"], "config.rate"),
            time_scale=_a_number(config.get("time_scale", 1.0), "config.time_scale"),
            duration=_a_number(config["duration"], "config.duration"),
            event_range=None
            if config.get("event_range") is None
            else _an_int(config["event_range"], "config.event_range"),
            start_at=None
            if config.get("start_at") is None
            else _a_number(config["start_at"], "config.start_at"),
        )
    except KeyError as e:
        raise MalformedLine(f"start line's config lacks {e.args[0]!r}") from None


def _an_int(value: Any, key: str) -> int:
    if type(value) is not int:
        raise MalformedLine(f"{key} is {type(value).__name__} {value!r}, expected int")
    return value


def _a_number(value: Any, key: str) -> float:
    if type(value) not in (int, float):
        raise MalformedLine(f"{key} is {type(value).__name__} {value!r}, expected int or float")
    return float(value)
