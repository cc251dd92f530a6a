"""Fault schedules: what to break, when (simulated seconds), and for how long.

Container-level faults (kill, pause, partition) and host-level ones
(host_partition: a whole host cut off from the others; host_crash: a host and
its VMs killed, and started again) are carried out by the
orchestrator through its backend; link conditions (delay, loss, duplicate)
are handed to the VMs, which apply them to their own sends.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from orchestrator.errors import ConfigError
from vm_node.conditions import ConditionError, LinkCondition

HOST_KINDS = ("host_partition", "host_crash")
BACKEND_KINDS = ("kill", "pause", "partition", *HOST_KINDS)
LINK_KINDS = ("delay", "loss", "duplicate")
KEYS = {
    "kill": {"target"},
    "pause": {"target"},
    "partition": {"groups"},
    "host_partition": {"host"},
    "host_crash": {"host"},
    "delay": {"delay", "links"},
    "loss": {"probability", "links"},
    "duplicate": {"probability", "links"},
}


class Fault(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    at: float  # simulated seconds after the trial's start
    duration: float
    targets: tuple[int, ...] = ()  # kill, pause
    groups: tuple[tuple[int, ...], ...] = ()  # partition
    condition: LinkCondition | None = None  # delay, loss, duplicate
    host: int | None = None  # host faults: the trial's host i (its nodes in hostname order)

    @property
    def end(self) -> float:
        return self.at + self.duration

    def describe(self) -> dict[str, Any]:
        """The fault as the schedule gives it, without the fields its kind does not have."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        if self.condition is not None:
            data["condition"] = self.condition.to_json()
        return data


def parse_faults(data: object, vms: int, source: str | None) -> tuple[Fault, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError("faults", "must be a list of faults", source)
    faults = tuple(_parse_fault(item, f"faults[{i}]", vms, source) for i, item in enumerate(data))
    _reject_overlaps(faults, source)
    return faults


def _parse_fault(item: object, field: str, vms: int, source: str | None) -> Fault:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{field}.{key}", problem, source)

    if not isinstance(item, dict):
        raise ConfigError(field, "must be a mapping with kind, at and duration", source)
    kind = item.get("kind")
    if kind not in KEYS:
        raise fail("kind", f"must be one of {list(KEYS)}, got {kind!r}")
    unknown = set(item) - {"kind", "at", "duration"} - KEYS[kind]
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown for a {kind} fault (known: {sorted(KEYS[kind])})")
    at, length = (_number(item.get(k), k, fail) for k in ("at", "duration"))
    if length <= 0:
        raise fail("duration", f"must be > 0, got {length}")
    if kind in ("kill", "pause"):
        target = item.get("target")
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < vms:
            raise fail("target", f"must be a VM id in 0..{vms - 1}, got {target!r}")
        return Fault(kind, at, length, targets=(target,))
    if kind == "partition":
        return Fault(kind, at, length, groups=_groups(item.get("groups"), vms, fail))
    if kind in HOST_KINDS:  # how many hosts there are, the backend knows at launch
        host = item.get("host")
        if isinstance(host, bool) or not isinstance(host, int) or host < 0:
            raise fail("host", f"must be a host number >= 0, got {host!r}")
        return Fault(kind, at, length, host=host)
    condition = {"kind": kind, "start": at, "end": at + length} | {
        k: item[k] for k in ("delay", "probability", "links") if k in item
    }
    try:
        return Fault(kind, at, length, condition=LinkCondition.from_json(condition, field, vms))
    except ConditionError as e:
        raise ConfigError(e.field, str(e).split(": ", 1)[1], source) from None


def parse_network(data: object, vms: int, source: str | None) -> tuple[LinkCondition, ...]:
    """The `network:` block: conditions on every link for the whole trial."""
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise ConfigError("network", "must be a mapping of delay, loss, duplicate", source)
    conditions = []
    for kind, value in data.items():
        if kind not in LINK_KINDS:
            raise ConfigError(f"network.{kind}", f"unknown (known: {list(LINK_KINDS)})", source)
        key = "delay" if kind == "delay" else "probability"
        try:
            conditions.append(LinkCondition.from_json({"kind": kind, key: value}, "network", vms))
        except ConditionError as e:
            field = e.field if kind == "delay" else f"network.{kind}"
            raise ConfigError(field, str(e).split(": ", 1)[1], source) from None
    return tuple(conditions)


def check_bounds(faults: tuple[Fault, ...], vms: int, duration: float, source: str | None) -> None:
    """Faults must name VMs that exist and end within the trial (also after overrides)."""
    for i, f in enumerate(faults):
        if f.end > duration:
            raise ConfigError(
                f"faults[{i}].duration",
                f"ends at {f.end:g} s, after the trial ({duration:g} s)",
                source,
            )
        ids = set(f.targets) | {vm for g in f.groups for vm in g}
        ids |= {vm for link in (f.condition.links if f.condition else None) or () for vm in link}
        if any(vm >= vms for vm in ids):
            raise ConfigError(
                f"faults[{i}]", f"names VM {max(ids)}, but there are {vms} VMs", source
            )


def _number(value: object, key: str, fail: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise fail(key, f"must be a number of simulated seconds, got {value!r}")
    if value < 0:
        raise fail(key, f"must be >= 0, got {value}")
    return float(value)


def _groups(value: object, vms: int, fail: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise fail("groups", f"must list at least two groups of VM ids, got {value!r}")
    seen: set[int] = set()
    groups = []
    for group in value:
        if not isinstance(group, list) or not group:
            raise fail("groups", f"each group must be a non-empty list of VM ids, got {group!r}")
        for vm in group:
            if isinstance(vm, bool) or not isinstance(vm, int) or not 0 <= vm < vms:
                raise fail("groups", f"{vm!r} is not a VM id in 0..{vms - 1}")
            if vm in seen:
                raise fail("groups", f"VM {vm} is in two groups")
            seen.add(vm)
        groups.append(tuple(group))
    return tuple(groups)


def _reject_overlaps(faults: tuple[Fault, ...], source: str | None) -> None:
    """One container-level fault at a time: their interplay is not defined."""
    windows = sorted((f.at, f.end, i) for i, f in enumerate(faults) if f.kind in BACKEND_KINDS)
    for (_, end, i), (start, _, j) in itertools.pairwise(windows):
        if start < end:
            raise ConfigError(
                f"faults[{j}].at",
                f"overlaps faults[{i}] (one kill, pause or partition of VMs or hosts at a time)",
                source,
            )
