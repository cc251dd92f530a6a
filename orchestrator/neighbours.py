"""The kernel's neighbour (ARP) table, which every container on one machine shares.

A trial's VMs talk over one bridge, and each VM's network namespace keeps an
entry per peer: N(N-1) in all. Linux keeps at most `gc_thresh3` entries (1024 by
default) across every namespace; beyond that a connection to a peer whose entry
cannot be made never leaves the VM (its SYN waits for an address the kernel will
not resolve), and the start barrier waits for it. A 50-VM trial needs 2,450
entries, so under the default the VMs that start last cannot reach most of their
peers and the trial fails at its ready timeout.

Under Swarm each node's kernel holds the entries of its own VMs, about 1/n of
the trial's over n nodes, each with an entry per peer; the hosts of a simulated
cluster are containers on this machine, so there every VM's entries share its
one table, as on one engine.
"""

from __future__ import annotations

import math
from pathlib import Path

THRESH = Path("/proc/sys/net/ipv4/neigh/default")
FLOOR = 8192  # what scripts/provision.sh sets: two 50-VM trials at once, and room


def entries_needed(vms: int, nodes: int = 1) -> int:
    """Entries on one kernel for the VMs it runs: its share of `vms` spread over `nodes`,
    each with an entry per peer."""
    return math.ceil(vms / nodes) * (vms - 1)


def shortfall(vms: int, thresh: Path = THRESH, nodes: int = 1) -> str | None:
    """Why `vms` VMs, this machine's kernel running its share of `nodes`, may never all
    link, or None when they fit."""
    try:
        limit = int((thresh / "gc_thresh3").read_text())
    except (OSError, ValueError):  # not Linux, or not ours to read: nothing to say
        return None
    need = entries_needed(vms, nodes)
    if need <= limit:
        return None
    high = max(FLOOR, 2 * need)
    where = "on one engine" if nodes == 1 else f"over {nodes} nodes, this one's share,"
    return (
        f"{vms} VMs {where} need {need} neighbour (ARP) entries, and this kernel keeps "
        f"at most {limit} (net.ipv4.neigh.default.gc_thresh3): links between the VMs that "
        f"start last may never come up. Raise it: sudo sysctl -w "
        f"net.ipv4.neigh.default.gc_thresh2={high // 2} net.ipv4.neigh.default.gc_thresh3={high}"
    )
