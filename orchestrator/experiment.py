"""Experiment files: load, validate (naming the bad field), apply overrides.

An experiment is a YAML mapping; see experiments/original.yaml. Unknown keys
are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from orchestrator.errors import ConfigError
from orchestrator.faults import Fault, check_bounds, parse_faults, parse_network
from orchestrator.resources import shipped
from orchestrator.skew import Skew
from vm_node.conditions import LinkCondition

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # usable in a Compose project name
MAX_VMS = 200
DEFAULT_VMS = 3
MIN_MTU, MAX_MTU = 68, 65535  # what Linux accepts for an IPv4 interface


class Experiment(msgspec.Struct, frozen=True):
    name: str
    vms: int = DEFAULT_VMS
    rate_range: tuple[float, float] | None = (1.0, 6.0)  # drawn per trial and VM
    rates: tuple[float, ...] | None = None  # or listed, one per VM
    event_range: int = 10
    duration: float = 60.0  # simulated seconds
    trials: int = 5
    seed: int = 0
    time_scale: float = 1.0
    description: str = ""
    network: tuple[LinkCondition, ...] = ()  # on every link, the whole trial
    faults: tuple[Fault, ...] = ()
    auth: bool = True  # VMs sign their frames with a fresh key per trial
    # Wall-clock offsets the VMs add to their timestamps.
    skew: Skew = msgspec.field(default_factory=Skew)
    realtime: bool = False  # VMs tick at real-time priority where the machine lets them
    mtu: int | None = None  # the lab network's MTU (container backends); None: the engine's

    def with_overrides(self, **overrides: Any) -> Experiment:
        """The experiment with command-line values in place (None: keep), re-validated."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        changed = msgspec.structs.replace(self, **changes)
        changed.validate("command line")
        return changed

    def to_dict(self) -> dict[str, Any]:
        """The experiment as the manifest's `config` records it."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["network"] = [c.to_json() for c in self.network]
        data["faults"] = [f.describe() for f in self.faults]
        data["skew"] = self.skew.to_json()
        if self.mtu is None:  # the engine's own: nothing the trial set
            del data["mtu"]
        return data

    def link_conditions(self) -> list[dict[str, Any]]:
        """What every VM is told to do to its own sends (vm_node's `links` setting)."""
        scheduled = [f.condition for f in self.faults if f.condition is not None]
        return [c.to_json() for c in (*self.network, *scheduled)]

    def validate(self, source: str | None = None) -> None:
        def fail(field: str, problem: str) -> None:
            raise ConfigError(field, problem, source)

        if not NAME_PATTERN.match(self.name):
            fail("name", f"{self.name!r} must be lowercase letters, digits, - or _ (1-40)")
        if not 1 <= self.vms <= MAX_VMS:
            fail("vms", f"must be between 1 and {MAX_VMS}, got {self.vms}")
        if self.rates is None and self.rate_range is None:
            fail("rate_range", "give rate_range or rates")
        if self.rates is not None and len(self.rates) != self.vms:
            fail("rates", f"lists {len(self.rates)} rates for {self.vms} VMs")
        for rate in self.rates or self.rate_range or ():
            if not 0 < rate < math.inf:
                fail("rates" if self.rates else "rate_range", f"rates must be > 0, got {rate:g}")
        if self.rate_range and self.rate_range[0] > self.rate_range[1]:
            fail("rate_range", f"min {self.rate_range[0]:g} is above max {self.rate_range[1]:g}")
        if self.event_range < 1:
            fail("event_range", f"must be >= 1, got {self.event_range}")
        if not 0 < self.duration < math.inf:
            fail("duration", f"must be > 0 simulated seconds, got {self.duration:g}")
        if not 1 <= self.trials <= 1000:
            fail("trials", f"must be between 1 and 1000, got {self.trials}")
        if not 0 <= self.seed < 2**53:
            fail("seed", f"must be in [0, 2^53), got {self.seed}")
        if not 0 < self.time_scale < math.inf:
            fail("time_scale", f"must be > 0, got {self.time_scale:g}")
        if self.mtu is not None and not MIN_MTU <= self.mtu <= MAX_MTU:
            fail("mtu", f"must be between {MIN_MTU} and {MAX_MTU} bytes, got {self.mtu}")
        check_bounds(self.faults, self.vms, self.duration, source)

    @classmethod
    def from_mapping(cls, data: object, source: str) -> Experiment:
        if not isinstance(data, Mapping):
            raise ConfigError("(file)", "must be a YAML mapping of field: value", source)
        unknown = sorted(set(data) - set(KNOWN))
        if unknown:
            raise ConfigError(str(unknown[0]), f"unknown field (known: {', '.join(KNOWN)})", source)
        if "name" not in data:
            raise ConfigError("name", "required", source)
        if "rates" in data and "rate_range" in data:
            raise ConfigError("rates", "give rates or rate_range, not both", source)
        values = {k: _typed(k, v, source) for k, v in data.items() if k in PLAIN}
        vms = values.get("vms", DEFAULT_VMS)
        values["network"] = parse_network(data.get("network"), vms, source)
        values["faults"] = parse_faults(data.get("faults"), vms, source)
        values["skew"] = Skew.parse(data.get("skew"), vms, source)
        if "rates" in values:
            values["rate_range"] = None
        experiment = cls(**values)
        experiment.validate(source)
        return experiment


def _given(kind: Any) -> Any:
    """A field's type as a file gives it: a field the file names has a value, never null."""
    if isinstance(kind, types.UnionType):
        (kind,) = (k for k in typing.get_args(kind) if k is not type(None))
    return kind


# The fields read as their type says; the rest need the VM count (faults, skew), and
# `sweep` is a grid of such experiments (orchestrator.sweep_spec).
PLAIN = {
    f.name: _given(f.type)
    for f in msgspec.structs.fields(Experiment)
    if f.name not in ("network", "faults", "skew")
}
KNOWN = (*(f.name for f in msgspec.structs.fields(Experiment)), "sweep")

# What an error says a type asks for.
WANTED = {
    str: "a string",
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    tuple[float, float]: "[min, max]",
    tuple[float, ...]: "a non-empty list of numbers",
}


def _typed(field: str, value: object, source: str) -> Any:
    """The value as the field's type, or an error naming the field and the value."""
    kind = PLAIN[field]
    try:
        typed = msgspec.convert(value, kind)
    except msgspec.ValidationError:
        typed = None
    if typed is None or not _usable(typed):
        raise ConfigError(field, f"must be {WANTED[kind]}, got {value!r}", source)
    return typed


def _usable(value: object) -> bool:
    """A number is finite, and a list of them is not empty."""
    if isinstance(value, tuple):
        return bool(value) and all(map(_usable, value))
    return not isinstance(value, float) or math.isfinite(value)


def find_experiment(name_or_path: str, search: tuple[Path, ...] | None = None) -> Path:
    """A path as given, or NAME looked up as ./experiments/NAME.yaml, then among the shipped."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not candidate.is_file():
            raise ConfigError("experiment", f"no such file: {name_or_path}")
        return candidate
    folders = search or (Path.cwd() / "experiments", shipped("experiments"))
    for folder in folders:
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
    raise ConfigError("experiment", f"unknown experiment {name_or_path!r} (known: {known})")


def load_experiment(name_or_path: str) -> tuple[Experiment, Path]:
    path = find_experiment(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("(file)", f"cannot read: {e}", str(path)) from None
    except yaml.YAMLError as e:
        raise ConfigError("(file)", f"not valid YAML: {e}", str(path)) from None
    return Experiment.from_mapping(data, str(path)), path
