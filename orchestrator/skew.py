"""Clock skew: wall-clock offsets, per host or per VM, that the VMs add to their timestamps.

Real hosts' clocks differ, and `clocklab check --skew` allows for it; the hosts
of a simulated cluster share one kernel clock. An experiment may give them
different clocks:

    skew:
      hosts: {1: 0.25}   # every VM on host 1 (VM i runs on host i mod n) is 0.25 s ahead
      vms: {0: -0.1}     # VM 0 is 0.1 s behind its host

Only the `timestamp` of each log line moves; the trial's agreed start and the
ticks do not. `--skew` at least `spread()` keeps the verdict valid.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from orchestrator.errors import ConfigError

MAX_OFFSET = 3600.0  # seconds


class Skew(msgspec.Struct, frozen=True):
    hosts: tuple[tuple[int, float], ...] = ()  # (host, offset in seconds)
    vms: tuple[tuple[int, float], ...] = ()  # (VM, offset on top of its host's)

    def offset(self, vm: int, hosts: int) -> float:
        """VM `vm`'s offset when the trial runs on `hosts` hosts (VM i on host i mod n)."""
        return dict(self.hosts).get(vm % hosts, 0.0) + dict(self.vms).get(vm, 0.0)

    def spread(self, vms: int, hosts: int) -> float:
        """How far two VMs' clocks disagree at most: the `--skew` that matches."""
        offsets = [self.offset(vm, hosts) for vm in range(vms)]
        return max(offsets) - min(offsets)

    def to_json(self) -> dict[str, dict[str, float]]:
        return {
            "hosts": {str(h): s for h, s in self.hosts},
            "vms": {str(v): s for v, s in self.vms},
        }

    @classmethod
    def parse(cls, data: object, vms: int, source: str | None) -> Skew:
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"hosts", "vms"}:
            raise ConfigError("skew", f"must be a mapping of hosts and vms, got {data!r}", source)
        hosts = _offsets(data.get("hosts"), "skew.hosts", None, source)
        return cls(hosts, _offsets(data.get("vms"), "skew.vms", vms, source))


def _offsets(data: object, field: str, limit: int | None, source: str | None) -> Any:
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise ConfigError(field, f"must map ids to seconds, got {data!r}", source)
    found = []
    for key, value in data.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise ConfigError(field, f"{key!r} is not an id >= 0", source)
        if limit is not None and key >= limit:
            raise ConfigError(field, f"names VM {key}, but there are {limit} VMs", source)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > MAX_OFFSET
        ):
            problem = f"offset of {key} must be seconds within ±{MAX_OFFSET:g}, got {value!r}"
            raise ConfigError(field, problem, source)
        found.append((key, float(value)))
    return tuple(sorted(found))
