"""Experiment files: load, validate (naming the bad field), apply overrides.

An experiment is a YAML mapping; see experiments/original.yaml. Unknown keys
are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import ConfigError
from orchestrator.faults import Fault, check_bounds, parse_faults, parse_network
from orchestrator.resources import shipped
from orchestrator.skew import Skew
from vm_node.conditions import LinkCondition

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # usable in a Compose project name
MAX_VMS = 200
DEFAULT_VMS = 3


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    vms: int = DEFAULT_VMS
    rate_range: tuple[float, float] | None = (1, 6)  # drawn per trial and VM
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
    skew: Skew = field(default_factory=Skew)  # wall-clock offsets the VMs add to their timestamps
    realtime: bool = False  # VMs tick at real-time priority where the machine lets them

    def with_overrides(self, **overrides: Any) -> Experiment:
        """The experiment with command-line values in place (None: keep), re-validated."""
        changed = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        changed.validate("command line")
        return changed

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["network"] = [c.to_json() for c in self.network]
        data["faults"] = [f.describe() for f in self.faults]
        data["skew"] = self.skew.to_json()
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
        if self.rates is not None and len(self.rates) != self.vms:
            fail("rates", f"lists {len(self.rates)} rates for {self.vms} VMs")
        for rate in self.rates or self.rate_range or ():
            if not rate > 0:
                fail("rates" if self.rates else "rate_range", f"rates must be > 0, got {rate}")
        if self.rate_range and self.rate_range[0] > self.rate_range[1]:
            fail("rate_range", f"min {self.rate_range[0]} is above max {self.rate_range[1]}")
        if self.event_range < 1:
            fail("event_range", f"must be >= 1, got {self.event_range}")
        if not self.duration > 0:
            fail("duration", f"must be > 0 simulated seconds, got {self.duration}")
        if not 1 <= self.trials <= 1000:
            fail("trials", f"must be between 1 and 1000, got {self.trials}")
        if not 0 <= self.seed < 2**53:
            fail("seed", f"must be in [0, 2^53), got {self.seed}")
        if not self.time_scale > 0:
            fail("time_scale", f"must be > 0, got {self.time_scale}")
        check_bounds(self.faults, self.vms, self.duration, source)

    @classmethod
    def from_mapping(cls, data: object, source: str) -> Experiment:
        if not isinstance(data, Mapping):
            raise ConfigError("(file)", "must be a YAML mapping of field: value", source)
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            known = ", ".join(FIELDS)
            raise ConfigError(str(unknown[0]), f"unknown field (known: {known})", source)
        if "name" not in data:
            raise ConfigError("name", "required", source)
        if "rates" in data and "rate_range" in data:
            raise ConfigError("rates", "give rates or rate_range, not both", source)
        values: dict[str, Any] = {
            k: FIELDS[k](k, v, source)
            for k, v in data.items()
            if k not in ("network", "faults", "skew", "sweep")
        }
        vms = values.get("vms", DEFAULT_VMS)
        values["network"] = parse_network(data.get("network"), vms, source)
        values["faults"] = parse_faults(data.get("faults"), vms, source)
        values["skew"] = Skew.parse(data.get("skew"), vms, source)
        if "rates" in values:
            values["rate_range"] = None
        experiment = cls(**values)
        experiment.validate(source)
        return experiment


def _int(field: str, value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an integer, got {value!r}", source)
    return value


def _number(field: str, value: object, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}", source)
    return value


def _bool(field: str, value: object, source: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be true or false, got {value!r}", source)
    return value


def _str(field: str, value: object, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string, got {value!r}", source)
    return value


def _numbers(field: str, value: object, source: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(field, f"must be a non-empty list of numbers, got {value!r}", source)
    return tuple(_number(f"{field}[{i}]", v, source) for i, v in enumerate(value))


def _range(field: str, value: object, source: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(field, f"must be [min, max], got {value!r}", source)
    low, high = _numbers(field, value, source)
    return (low, high)


FIELDS: dict[str, Any] = {
    "name": _str,
    "description": _str,
    "vms": _int,
    "rate_range": _range,
    "rates": _numbers,
    "event_range": _int,
    "duration": _number,
    "trials": _int,
    "seed": _int,
    "time_scale": _number,
    "auth": _bool,
    "realtime": _bool,
    "network": None,  # parsed with the VM count known: orchestrator.faults
    "faults": None,
    "skew": None,  # orchestrator.skew
    "sweep": None,  # a grid of such experiments: orchestrator.sweep_spec
}


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
