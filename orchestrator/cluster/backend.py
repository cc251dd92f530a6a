"""The swarm backend on a simulated cluster: host faults through this machine's engine.

A host is cut off by disconnecting its container from the cluster's network,
and reconnected at its fixed address (the swarm knows its nodes by address).
The backend reaches only the manager's engine; the manager's engine labels say
that it is a simulated host and where this machine's engine is (layout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker

from orchestrator.backends.swarm import SwarmBackend
from orchestrator.cluster.formation import image_name, ship_image
from orchestrator.cluster.hosts import host_address, inner_client
from orchestrator.cluster.layout import LABEL_CLUSTER, LABEL_ENGINE, LABEL_HOST, Host, Layout
from orchestrator.errors import ConfigError
from orchestrator.image import ensure_image
from orchestrator.plan import TrialPlan
from vm_node.rundir import RunDir

ENGINE_TIMEOUT = 30  # seconds per call to this machine's engine


def simulated_layout(manager: Any) -> Layout | None:
    """The layout of the simulated cluster whose manager is `manager` (an engine client), or
    None where it is a real host."""
    labels = dict(
        label.split("=", 1) for label in manager.info().get("Labels") or [] if "=" in label
    )
    if LABEL_HOST not in labels or LABEL_ENGINE not in labels:
        return None
    hosts = len(manager.nodes.list())
    name = labels.get(LABEL_CLUSTER, Layout().name)
    return Layout(hosts=hosts, name=name, engine=labels[LABEL_ENGINE])


class ClusterSwarmBackend(SwarmBackend):
    """VMs as a swarm stack across the simulated hosts; a whole host can be cut off."""

    def __init__(self, *args: Any, layout: Layout, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layout = layout
        self.outer = docker.DockerClient(base_url=layout.engine, timeout=ENGINE_TIMEOUT)

    def launch(self, plan: TrialPlan, run_dir: RunDir) -> None:
        self._check_hosts(plan)
        super().launch(plan, run_dir)

    def _check_hosts(self, plan: TrialPlan) -> None:
        """Before the deploy: every host fault names one of the swarm's nodes."""
        for i, fault in enumerate(plan.experiment.faults):
            if fault.host is not None and fault.host >= len(self.nodes):
                raise ConfigError(
                    f"faults[{i}].host",
                    f"must be a host in 0..{len(self.nodes) - 1} (the swarm has "
                    f"{len(self.nodes)} nodes), got {fault.host}",
                )

    # --- host_partition -----------------------------------------------------

    def cut_off_host(self, host: int) -> None:
        self._network().disconnect(self._host(host).container, force=True)

    def reconnect_host(self, host: int) -> None:
        simulated = self._host(host)
        address = host_address(self.outer, self.layout, simulated)
        self._network().connect(simulated.container, ipv4_address=address)

    def _host(self, host: int) -> Host:
        """The simulated host behind the trial's node `host` (nodes are in hostname order)."""
        hostname = self.nodes[host].hostname
        index = hostname.removeprefix("host")
        if not index.isdigit():
            raise ConfigError("host", f"node {hostname} is not a host of {self.layout.name}")
        return self.layout.host(int(index))

    def _network(self) -> Any:
        return self.outer.networks.get(self.layout.network)


def prepare_image(layout: Layout, say: Callable[[str], None]) -> str:
    """The VM image's id: built on this machine's engine where stale, then loaded into each
    host that lacks it (a change to vm_node needs no new cluster)."""
    outer = docker.DockerClient(base_url=layout.engine, timeout=ENGINE_TIMEOUT)
    image_id = ensure_image(outer, progress=say)
    inner = [(host, inner_client(host)) for host in layout.all_hosts()]
    ship_image(outer, image_name(outer, image_id), inner, say)
    for _, client in inner:
        client.close()
    return image_id
