"""What the swarm says about its nodes and a stack's tasks, read from the engine's answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.errors import BackendUnavailable

NEVER_RAN = -1  # the exit code reported for a task that had no container
NOT_YET = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)
RUNS = frozenset({*NOT_YET, "running"})
SHIP_HINT = (
    "join the nodes with `clocklab cluster join ssh://USER@NODE ...`, which loads {image} into "
    "each and again whenever it changes (or push it to a registry and `docker pull` it on each "
    "node), then run the trial again"
)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    hostname: str

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Node:
        return cls(attrs["ID"], attrs["Description"]["Hostname"])


def usable_nodes(client: Any) -> list[Node]:
    """The swarm's ready, active nodes, by hostname; BackendUnavailable where this is no manager."""
    swarm = client.info().get("Swarm") or {}
    state = swarm.get("LocalNodeState") or "inactive"
    if state != "active":
        why = f": {swarm['Error']}" if swarm.get("Error") else ""
        raise BackendUnavailable(
            f"this Docker engine is not in a swarm (state {state}{why}). Run `docker swarm init` "
            "to make it a one-node swarm (`docker swarm leave --force` undoes it), or join it to "
            "a swarm with the `docker swarm join ...` command a manager prints"
        )
    if not swarm.get("ControlAvailable"):
        raise BackendUnavailable(
            "this Docker engine is a swarm worker: run clocklab on a manager "
            "(`docker node ls` works there and lists the managers)"
        )
    nodes = [
        Node.from_attrs(n.attrs)
        for n in client.nodes.list()
        if n.attrs["Status"]["State"] == "ready" and n.attrs["Spec"]["Availability"] == "active"
    ]
    if not nodes:
        raise BackendUnavailable("the swarm has no ready, active node (see `docker node ls`)")
    return sorted(nodes, key=lambda n: (n.hostname, n.id))


def exit_code(task: dict[str, Any] | None) -> int | None:
    """A task's exit code, None while it has yet to end; NEVER_RAN without a container."""
    if task is None or task["Status"]["State"] in RUNS:
        return None
    container = task["Status"].get("ContainerStatus") or {}
    if not container.get("ContainerID"):
        return NEVER_RAN
    return int(container.get("ExitCode", NEVER_RAN))


def task_state(task: dict[str, Any] | None) -> str:
    return "new" if task is None else str(task["Status"]["State"])
