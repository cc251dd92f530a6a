"""One trial's compose document made fit for `docker stack deploy`: the swarm-only keys.

The docker backend's rendering (backends/compose/render.py) stays the source; this
adds what Swarm needs and converts what it would drop silently:

- the image by id, so that every node runs exactly the image built here and
  no node tries a registry first (a node without it says "No such image");
- no restart when a VM exits (`deploy.restart_policy`; Swarm ignores `restart`);
- DNS round robin instead of a virtual IP (no IPVS on these kernels);
- the logs in the container's /tmp (a bind mount would be one host's folder;
  the backend collects the lines from the service logs instead), or, where the
  backend reaches every node's engine, also on the trial's volume on each node
  (`log_volume`, node_logs.py): each line to the volume, then to stdout;
- /tmp as a long-form tmpfs volume (the short `tmpfs:` key is dropped silently);
- the labels on the services too (`deploy.labels`), not only on the containers;
- secrets owned by the VM's user, readable by it alone (Compose bind-mounts the file),
  under a short name (Swarm prefixes the stack's);
- VM i pinned to node i mod n when the swarm has several nodes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.auth import SECRET
from orchestrator.engine import LABEL_VM
from orchestrator.plan import TrialPlan

# The 20.10 CLI rejects a file without `version`; 3.8 has init, cap_drop and tmpfs size.
STACK_FORMAT = "3.8"
LOG_DIR = "/tmp/logs"
TMPFS_FLOOR = 16 * 2**20  # what compose/stack.yaml gives /tmp
LINE_BUDGET = 512  # bytes a log line may take, plus 32 per VM for the vector clock

# Compose keys Swarm services do not have. `docker stack deploy` ignores them
# ("Ignoring unsupported options: restart, security_opt") or, for pull_policy,
# does not know them. A stack file cannot set no-new-privileges, on this
# engine or newer ones (moby/moby#41371): under Swarm the VMs keep a read-only
# root, no capabilities and a non-root user, but run without it.
COMPOSE_ONLY = ("pull_policy", "restart", "security_opt", "tmpfs")
# The key's name in the stack file. Swarm names the secret `<stack>_<name>` and allows 64
# characters; a stack name takes up to 53 (TrialPlan.project). The VM still reads
# /run/secrets/clocklab_auth_key.
STACK_SECRET = "key"
# The trial's log volume in the stack file; on each node it is `<stack>_logs`. It is
# mounted on the image's log folder, owned by the VM's user: a new volume takes its owner.
LOG_VOLUME = "logs"
LOG_VOLUME_DIR = "/logs"


def swarm_document(
    document: dict[str, Any],
    plan: TrialPlan,
    image: str,
    nodes: Sequence[str] = (),
    log_volume: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The stack file for `docker stack deploy`; `nodes` are node ids to spread VMs over.

    With `log_volume` (its labels), each VM also keeps its log on the trial's volume on its
    node.
    """
    swarm: dict[str, Any] = {"version": STACK_FORMAT} | copy.deepcopy(document)
    if log_volume is not None:
        swarm["volumes"] = {LOG_VOLUME: {"labels": dict(log_volume)}}
    if SECRET in swarm.get("secrets", {}):
        swarm["secrets"] = {STACK_SECRET: swarm["secrets"][SECRET]}
    for service in swarm["services"].values():
        vm = int(service["labels"][LABEL_VM])
        for key in COMPOSE_ONLY:
            service.pop(key, None)
        service["image"] = image
        if "secrets" in service:  # a secret file is the VM's to read, read-only
            owner = str(service.get("user", "0:0")).split(":")[0]
            service["secrets"] = [
                {
                    "source": STACK_SECRET,
                    "target": SECRET,
                    "uid": owner,
                    "gid": owner,
                    "mode": 0o400,
                }
            ]
        environment = service.get("environment", {})
        logs = environment.get("CLOCKLAB_LOG_DIR")
        volumes = [v for v in service.get("volumes", []) if logs is None or _target(v) != logs]
        volumes.append(
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": tmpfs_bytes(plan, vm)}}
        )
        # Swarm collects each VM's log from its stdout (docker service logs)
        if log_volume is not None:
            volumes.append({"type": "volume", "source": LOG_VOLUME, "target": LOG_VOLUME_DIR})
            log = {"CLOCKLAB_LOG_DIR": LOG_VOLUME_DIR, "CLOCKLAB_LOG_STREAM": "file+stdout"}
        else:
            log = {"CLOCKLAB_LOG_DIR": LOG_DIR, "CLOCKLAB_LOG_STREAM": "stdout"}
        service["environment"] = environment | log
        service["volumes"] = volumes
        deploy: dict[str, Any] = {
            "endpoint_mode": "dnsrr",
            "replicas": 1,
            "restart_policy": {"condition": "none"},
            # A VM started again (node_faults.py) replaces one already dead: its new task
            # need not wait for the manager to hear that the old one stopped.
            "update_config": {"order": "start-first"},
            "labels": dict(service["labels"]),
        }
        if len(nodes) > 1:
            deploy["placement"] = {"constraints": [f"node.id == {nodes[vm % len(nodes)]}"]}
        service["deploy"] = deploy
    return swarm


def tmpfs_bytes(plan: TrialPlan, vm: int) -> int:
    """Room in /tmp for VM `vm`'s log file: twice its expected size, at least 16 MiB."""
    lines = plan.experiment.duration * plan.rates[vm] + 100
    expected = lines * (LINE_BUDGET + 32 * plan.vms)
    mib = math.ceil(max(TMPFS_FLOOR, 2 * expected) / 2**20)
    return int(mib * 2**20)


def _target(volume: Any) -> str | None:
    """Where a volume (short `src:dst[:mode]` or long form) is mounted."""
    if isinstance(volume, str):
        parts = volume.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return str(volume.get("target")) if isinstance(volume, dict) else None
