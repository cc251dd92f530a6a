"""What a cluster is now: each host's container, engine, swarm role, VM image and context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.cluster import hosts
from orchestrator.cluster.contexts import Contexts
from orchestrator.cluster.layout import LABEL_HOST, Layout


@dataclass(frozen=True, slots=True)
class HostStatus:
    hostname: str
    container: str  # running, exited, ... or "missing"
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


def _engine(host: Any, vm_image_id: str | None) -> tuple[str, bool]:
    import docker.errors

    try:
        inner = hosts.inner_client(host)
        version = str(inner.version().get("Version"))
        has = vm_image_id is not None and any(i.id == vm_image_id for i in inner.images.list())
        inner.close()
    except docker.errors.DockerException as e:
        return f"not answering ({type(e).__name__})", False
    return version, has


def _nodes(layout: Layout) -> dict[str, str]:
    """hostname -> "<role> <state>" as the manager sees them; empty without a manager."""
    import docker.errors

    try:
        manager = hosts.inner_client(layout.manager)
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
