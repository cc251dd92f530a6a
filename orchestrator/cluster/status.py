"""What a cluster is now: each host's container (or, joined, how it is reached), engine, swarm
role, VM image and context."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from orchestrator.cluster import hosts
from orchestrator.cluster.contexts import Contexts
from orchestrator.cluster.layout import LABEL_HOST, Layout
from orchestrator.cluster.record import JoinRecord
from orchestrator.engine import client_for, resolve_endpoint
from orchestrator.errors import ConfigError

JOINED = "joined"  # a joined machine's `container`: it is no container of this machine


@dataclass(frozen=True, slots=True)
class HostStatus:
    hostname: str
    container: str  # running, exited, ... or "missing"; JOINED and how, for a joined machine
    engine: str  # its version, or why it does not answer
    node: str  # "manager ready", "worker ready", "not in the swarm", ...
    vm_image: bool  # holds this machine's VM image (the same id)
    context: bool


def cluster_status(outer: Any, layout: Layout, vm_image_id: str | None) -> list[HostStatus]:
    """One row per host that exists (hosts labelled with the cluster's name)."""
    existing = hosts.cluster_containers(outer, layout.name)
    contexts = Contexts().existing()
    nodes = _nodes(layout)
    rows = []
    for container in existing:
        hostname = container.labels.get(LABEL_HOST, container.name)
        host = layout.host(int(hostname.removeprefix("host")))
        engine, has_image = (
            _engine(host, vm_image_id) if container.status == "running" else ("-", False)
        )
        rows.append(
            HostStatus(
                hostname=hostname,
                container=container.status,
                engine=engine,
                node=nodes.get(hostname, "not in the swarm"),
                vm_image=has_image,
                context=host.context in contexts,
            )
        )
    return rows


def joined_status(record: JoinRecord, vm_image_id: str | None) -> list[HostStatus]:
    """One row per machine `clocklab cluster join` joined, each reached by its context."""
    contexts = Contexts().existing()
    nodes = _nodes_of(partial(_context_client, record.name))
    rows = []
    for node in record.nodes:
        engine, has_image = _engine_of(partial(_context_client, node.context), vm_image_id)
        rows.append(
            HostStatus(
                hostname=node.hostname,
                container=f"{JOINED}: {node.given}",
                engine=engine,
                node=nodes.get(node.hostname, "not in the swarm"),
                vm_image=has_image,
                context=node.context in contexts,
            )
        )
    return rows


def _context_client(context: str) -> Any:
    import docker.errors

    try:
        return client_for(resolve_endpoint(context, os.environ))
    except ConfigError as e:
        raise docker.errors.DockerException(str(e)) from None


def _engine(host: Any, vm_image_id: str | None) -> tuple[str, bool]:
    return _engine_of(lambda: hosts.inner_client(host), vm_image_id)


def _engine_of(connect: Callable[[], Any], vm_image_id: str | None) -> tuple[str, bool]:
    import docker.errors

    try:
        inner = connect()
        version = str(inner.version().get("Version"))
        has = vm_image_id is not None and any(i.id == vm_image_id for i in inner.images.list())
        inner.close()
    except docker.errors.DockerException as e:
        return f"not answering ({type(e).__name__})", False
    return version, has


def _nodes(layout: Layout) -> dict[str, str]:
    return _nodes_of(lambda: hosts.inner_client(layout.manager))


def _nodes_of(connect: Callable[[], Any]) -> dict[str, str]:
    """hostname -> "<role> <state>" as the manager sees them; empty without a manager."""
    import docker.errors

    try:
        manager = connect()
        nodes = manager.nodes.list()
        manager.close()
    except (docker.errors.DockerException, OSError):
        return {}
    return {
        n.attrs["Description"][
            "Hostname"
        ]: f"{n.attrs['Spec']['Role']} {n.attrs['Status']['State']}"
        for n in nodes
    }
