"""Removes what trials left behind, found by the clocklab.run label."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import BackendUnavailable
from orchestrator.stack import LABEL_RUN


def docker_client() -> Any:
    """A Docker SDK client that answers; BackendUnavailable where there is none."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as e:
        raise BackendUnavailable(f"the Docker SDK for Python is not installed: {e}") from None
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as e:
        raise BackendUnavailable(f"no Docker engine answers: {e}") from None
    return client


def remove_labelled(client: Any = None, run: str | None = None) -> str:
    """Remove containers, services and networks labelled with `run` (or any run)."""
    from docker.errors import APIError, NotFound

    client = client or docker_client()
    label = f"{LABEL_RUN}={run}" if run else LABEL_RUN
    removed: dict[str, int] = {"containers": 0, "services": 0, "networks": 0}
    if client.info().get("Swarm", {}).get("ControlAvailable"):
        for service in client.services.list(filters={"label": label}):
            service.remove()
            removed["services"] += 1
    # The low-level list: the high-level one inspects each container and fails
    # on one that goes away meanwhile (a swarm task, a trial tearing down).
    for container in client.api.containers(all=True, filters={"label": label}):
        try:
            client.api.remove_container(container["Id"], force=True)
            removed["containers"] += 1
        except NotFound:
            pass
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
            removed["networks"] += 1
        except (NotFound, APIError):  # a swarm network goes once its tasks are gone
            pass
    return ", ".join(f"{n} {kind}" for kind, n in removed.items() if n)
