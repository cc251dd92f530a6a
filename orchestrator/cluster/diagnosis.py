"""Why a host's own Docker engine cannot run, read from what the engines said.

Measured here, each missing piece leaves its own words:

- no CAP_NET_ADMIN: dockerd exits, "iptables -t nat -N DOCKER: ... Permission denied";
- no CAP_SYS_ADMIN: loading an image fails, "Error creating mount namespace before
  pivot: operation not permitted";
- no writable /sys/fs/cgroup: an inner container fails, "mkdir /sys/fs/cgroup/cpuset/...:
  read-only file system";
- the outer engine refusing the capabilities: "unable to apply caps".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CGROUP_MOUNT = "-v /sys/fs/cgroup:/sys/fs/cgroup:rw"


@dataclass(frozen=True, slots=True)
class Finding:
    missing: str  # what the host container lacks, in words a user can act on
    evidence: str  # the line that says so


_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"unable to apply caps", re.I),
        "this Docker engine refuses the capabilities a host needs (CAP_SYS_ADMIN, "
        "CAP_NET_ADMIN and CAP_SYS_PTRACE with seccomp and AppArmor unconfined); is it a "
        "rootless or restricted engine?",
    ),
    (
        re.compile(r"iptables.*(permission denied|operation not permitted)", re.I),
        "the host container lacks CAP_NET_ADMIN (its engine may not set up iptables)",
    ),
    (
        re.compile(r"mount namespace.*operation not permitted|mount.*permission denied", re.I),
        "the host container lacks CAP_SYS_ADMIN (its engine may not mount), or seccomp "
        "or AppArmor forbids mount",
    ),
    (
        re.compile(r"/sys/fs/cgroup\S*: read-only file system", re.I),
        f"the host container lacks a writable cgroup mount ({CGROUP_MOUNT}): its engine "
        "cannot make cgroups for its containers",
    ),
    (
        re.compile(r"(no such file or directory|not a directory).*/sys/fs/cgroup", re.I),
        "this machine has no /sys/fs/cgroup to give the hosts (cgroups are not mounted)",
    ),
)


def diagnose(output: str) -> Finding | None:
    """The first known cause in an engine's words (latest line first), or None."""
    for line in reversed(output.splitlines()):
        for pattern, missing in _RULES:
            if pattern.search(line):
                return Finding(missing, line.strip()[-400:])
    return None
