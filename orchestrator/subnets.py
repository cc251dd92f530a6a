"""Subnets of Docker networks: which the engine has, and a free one from a pool.

A network whose subnet clocklab chooses gives each container an address known
before it starts: a cluster's hosts keep theirs across crashes, and a trial's
VMs are told where their peers are instead of asking the name server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
from typing import Any

from orchestrator.errors import NoFreeSubnet

Subnet = ipaddress.IPv4Network


def in_use(client: Any) -> list[Subnet]:
    """The IPv4 subnets of every network the engine has."""
    found = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                found.append(ipaddress.IPv4Network(config["Subnet"]))
    return found


def free(pool: Subnet, taken: list[Subnet], rng: random.Random | None = None) -> Subnet:
    """A /24 of `pool` that overlaps none of `taken`: the first, or with `rng` any (so that
    commands choosing at once rarely choose alike)."""
    candidates = list(pool.subnets(new_prefix=24))
    if rng is not None:
        rng.shuffle(candidates)
    for candidate in candidates:
        if not any(candidate.overlaps(used) for used in taken):
            return candidate
    raise NoFreeSubnet(str(pool))
