"""Why a log line was quarantined, in words that name the key and the value.

msgspec says what broke and where (`Expected `int`, got `str` - at `$.lamport``);
this turns that into the quarantine's wording (`lamport is str '12', expected
int`), taking the offending value from the line itself.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson

from analysis.load.schema import FileShape

_WHERE = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_EXPECTED = re.compile(r"^Expected `(?P<type>[^`]+)`, got `[^`]+`$")
_MISSING = re.compile(r"^Object missing required field `(?P<key>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`$")


def reason(error: msgspec.ValidationError, raw: bytes, shape: FileShape, file_name: str) -> str:
    """The quarantine reason for a line `raw` of `file_name` that msgspec rejected."""
    match = _WHERE.match(str(error))
    assert match is not None  # the pattern matches any text
    what, path = match["what"], match["path"] or ""
    steps = [key if key else int(index) for key, index in _STEP.findall(path)]
    key = ".".join(str(s) for s in steps if isinstance(s, str))
    if missing := _MISSING.match(what):
        inside = f" in {key}" if key else ""
        return f"missing required key {missing['key']!r}{inside}"
    if unknown := _UNKNOWN.match(what):
        return f"{key} has key {unknown['key']!r}, which is not one of the run's {shape.vms} VMs"
    value = _value_at(raw, steps)
    if expected := _EXPECTED.match(what):
        if not steps:
            return "not a JSON object"
        return f"{key} is {type(value).__name__} {value!r}, expected {expected['type']}"
    if what.startswith("Expected `int` <") or what.startswith("Expected `int` >"):
        return f"{key} has a value beyond 64 bits"
    if key == "event":
        return f"unknown event {value!r}"
    if key in ("vm", "incarnation"):
        return f"{key} {value!r} does not match the file name {file_name}"
    return f"{what} at {key}" if key else what


def other_run(run: Any, shape: FileShape) -> str:
    """The reason for a line whose run is not the trial's."""
    return f"run {run!r} is not this trial's run {shape.run!r}"


def _value_at(raw: bytes, steps: list[str | int]) -> Any:
    value: Any = orjson.loads(raw)
    for step in steps:
        value = value[step]
    return value
