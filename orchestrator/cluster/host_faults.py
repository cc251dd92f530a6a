"""Host-level faults on a simulated cluster, carried out through this machine's engine.

A host is cut off by disconnecting its container from the cluster's network
and reconnected at its fixed address (the swarm knows its nodes by address).
A trial's swarm backend reaches only the manager's engine; the manager's
engine labels say that it is a simulated host and where this machine's
engine is, so the backend can find the hosts from there.
"""

from __future__ import annotations

from typing import Any

from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.hosts import host_address
from orchestrator.cluster.layout import LABEL_CLUSTER, LABEL_ENGINE, LABEL_HOST, Layout

HOST_FAULTS = frozenset({"host_partition"})


class SimulatedHosts:
    """Cut a host off from the others, and reconnect it, by hostname (host0, host1, ...)."""

    def __init__(self, outer: Any, layout: Layout) -> None:
        self.outer = outer
        self.layout = layout

    def cut_off(self, hostname: str) -> None:
        self._network().disconnect(self._host(hostname).container, force=True)

    def reconnect(self, hostname: str) -> None:
        host = self._host(hostname)
        address = host_address(self.outer, self.layout, host)
        self._network().connect(host.container, ipv4_address=address)

    def _host(self, hostname: str) -> Any:
        index = hostname.removeprefix("host")
        if not index.isdigit():
            raise ClusterError(f"{hostname} is not a host of {self.layout.name}")
        return self.layout.host(int(index))

    def _network(self) -> Any:
        return self.outer.networks.get(self.layout.network)


def simulated_hosts(manager: Any) -> SimulatedHosts | None:
    """The hosts of the simulated cluster `manager` (an engine client) belongs to, or None
    where it is a real host."""
    labels = dict(
        label.split("=", 1) for label in manager.info().get("Labels") or [] if "=" in label
    )
    if LABEL_HOST not in labels or LABEL_ENGINE not in labels:
        return None
    import docker

    outer = docker.DockerClient(base_url=labels[LABEL_ENGINE], timeout=30)
    return SimulatedHosts(outer, Layout(name=labels.get(LABEL_CLUSTER, Layout().name)))
