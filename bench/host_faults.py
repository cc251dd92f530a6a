"""What a trial's logs say about its host faults: how soon links and VMs came back.

- After a host_partition heals: for every link some VM reported down while the host
  was cut off, the time from the heal to that VM's next `peer_up` for the peer.
- After a host_crash: the time until each of the host's VMs, in its new incarnation,
  has logged `peer_up` for every peer; the latest of them is when the host's VMs had
  rejoined the trial.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.trials import read_records
from vm_node.rundir import RunDir


def links_back(run_dir: Path, start: float, end: float) -> dict[tuple[int, int], float]:
    """(vm, peer) of each link reported down between `start` and `end` -> seconds from
    `end` to its next `peer_up` (inf: it never came back)."""
    down: set[tuple[int, int]] = set()
    up_after: dict[tuple[int, int], float] = {}
    for vm, _, path in RunDir(run_dir).log_files():
        for line in read_records(path):
            if line.get("event") not in ("peer_down", "peer_up"):
                continue
            link, at = (vm, int(line["peer"])), float(line["timestamp"])
            if line["event"] == "peer_down" and start <= at <= end:
                down.add(link)
            elif line["event"] == "peer_up" and at >= end:
                up_after[link] = min(up_after.get(link, math.inf), at)
    return {link: up_after.get(link, math.inf) - end for link in sorted(down)}


def rejoined_at(run_dir: Path, vms: int) -> dict[int, float]:
    """Each restarted VM (incarnation 1) -> when it had logged `peer_up` for all its
    `vms - 1` peers (inf: some peer never)."""
    found = {}
    for vm, incarnation, path in RunDir(run_dir).log_files():
        if incarnation != 1:
            continue
        first_up: dict[int, float] = {}
        for line in read_records(path):
            if line.get("event") == "peer_up":
                first_up.setdefault(line["peer"], line["timestamp"])
        found[vm] = max(first_up.values()) if len(first_up) == vms - 1 else math.inf
    return found
