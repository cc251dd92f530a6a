"""The kernel's neighbour (ARP) table, which every container on one machine shares.

A trial's VMs talk over one bridge, and each VM's network namespace keeps an
entry per peer: N(N-1) in all. Linux keeps at most `gc_thresh3` entries (1024 by
default) across every namespace; beyond that a connection to a peer whose entry
cannot be made never leaves the VM (its SYN waits for an address the kernel will
not resolve), and the start barrier waits for it. A 50-VM trial needs 2,450
entries, so under the default the VMs that start last cannot reach most of their
peers and the trial fails at its ready timeout.
"""

from __future__ import annotations

from pathlib import Path

THRESH = Path("/proc/sys/net/ipv4/neigh/default")
FLOOR = 8192  # what scripts/provision.sh sets: two 50-VM trials at once, and room


def entries_needed(vms: int) -> int:
    return vms * (vms - 1)


def shortfall(vms: int, thresh: Path = THRESH) -> str | None:
    """Why `vms` VMs on this machine's engine may never all link, or None when they fit."""
    try:
        limit = int((thresh / "gc_thresh3").read_text())
    except (OSError, ValueError):  # not Linux, or not ours to read: nothing to say
        return None
    need = entries_needed(vms)
    if need <= limit:
        return None
    high = max(FLOOR, 2 * need)
    return (
        f"{vms} VMs on one engine need {need} neighbour (ARP) entries, and this kernel keeps "
        f"at most {limit} (net.ipv4.neigh.default.gc_thresh3): links between the VMs that "
        f"start last may never come up. Raise it: sudo sysctl -w "
        f"net.ipv4.neigh.default.gc_thresh2={high // 2} net.ipv4.neigh.default.gc_thresh3={high}"
    )
