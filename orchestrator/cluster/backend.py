"""The swarm backend on a simulated cluster: host faults through this machine's engine,
which runs the hosts (VM faults and partitions go through the hosts' own engines,
node_faults.py and node_cuts.py).

- host_partition: the host's container is disconnected from the cluster's network,
  and reconnected at its fixed address (the swarm knows its nodes by address).
- host_crash: the host's container is killed (its engine and VMs die with it) and
  started again; once its engine answers, the host's log volume is collected
  (node_logs.py, where the backend keeps the logs on the nodes) and each of its
  VMs starts again as a new incarnation (Stack.start_again).

The trial reaches the manager's engine; its labels say that it is a simulated
host and where this machine's engine is (layout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.backends.swarm.node_logs import NodeLogs
from orchestrator.backends.swarm.stack import Stack
from orchestrator.cluster.formation import image_name, ship_image
from orchestrator.cluster.hosts import host_address, inner_client, wait_for_engine
from orchestrator.cluster.layout import LABEL_CLUSTER, LABEL_ENGINE, LABEL_HOST, Host, Layout
from orchestrator.engine import Endpoint, client_for
from orchestrator.errors import ConfigError
from orchestrator.faults import Fault
from orchestrator.image import ensure_image

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


def prepare_image(layout: Layout, outer: Any, say: Callable[[str], None]) -> str:
    """The VM image's id: built on this machine's engine (`outer`) where stale, then loaded
    into each host that lacks it (a change to vm_node needs no new cluster)."""
    image_id = ensure_image(outer, progress=say)
    inner = [(host.hostname, inner_client(host)) for host in layout.all_hosts()]
    ship_image(outer, image_name(outer, image_id), inner, say)
    for _, client in inner:
        client.close()
    return image_id


def outer_client(layout: Layout) -> Any:
    """This machine's engine, which runs the hosts of `layout`."""
    return client_for(Endpoint(layout.engine), ENGINE_TIMEOUT)


class HostFaults:
    """Whole hosts of a simulated cluster cut off and crashed, under `stack`.

    `outer` is this machine's engine (outer_client); `logs`, the stack's log volumes, are
    collected from a crashed host when it is back."""

    def __init__(
        self, stack: Stack, layout: Layout, outer: Any, logs: NodeLogs | None = None
    ) -> None:
        self.stack = stack
        self.layout = layout
        self.outer = outer
        self.logs = logs

    def check_fault(self, field: str, fault: Fault, vms: int) -> None:
        """A host fault names a node, not the manager's for a crash (backends.check_schedule
        asks, before the trial touches anything)."""
        n = len(self.stack.nodes)
        if fault.host is not None and fault.host >= n:
            problem = f"must be a host in 0..{n - 1} (the swarm has {n} nodes), got {fault.host}"
            raise ConfigError(f"{field}.host", problem)
        if fault.kind == "host_crash" and self._host(fault.host or 0) == self.layout.manager:
            raise ConfigError(
                f"{field}.host", "host 0 is the swarm manager, which runs the trial: crash another"
            )

    # --- host_partition -----------------------------------------------------

    def cut_off_host(self, host: int) -> None:
        self._network().disconnect(self._host(host).container, force=True)

    def reconnect_host(self, host: int) -> None:
        simulated = self._host(host)
        address = host_address(self.outer, self.layout, simulated)
        self._network().connect(simulated.container, ipv4_address=address)

    # --- host_crash -----------------------------------------------------------

    def crash_host(self, host: int) -> tuple[int, ...]:
        vms = self.stack.vms_on(self.stack.nodes[host].hostname)
        self.outer.api.kill(self._host(host).container)
        return vms

    def restart_host(self, host: int) -> None:
        """Start the host; once its engine answers, its VMs as their next incarnations.

        Not sooner: tasks the manager hands a host whose engine is still starting
        stayed `preparing` here.
        """
        stack, simulated = self.stack, self._host(host)
        hostname = stack.nodes[host].hostname
        vms = stack.vms_on(hostname)
        began = stack.clock()
        self.outer.api.start(simulated.container)
        stack.timings[f"{hostname}_started_s"] = round(stack.clock() - began, 3)
        wait_for_engine(self.outer, simulated).close()  # names the cause where it cannot start
        stack.timings[f"{hostname}_engine_back_s"] = round(stack.clock() - began, 3)
        if self.logs is not None:  # before start_again, which resumes from the lines kept
            self.logs.collect(hostname)
            stack.timings[f"{hostname}_logs_collected_s"] = round(stack.clock() - began, 3)
        for vm in vms:
            stack.start_again(vm)
        # asked: the rest, until each VM runs again, is the swarm's (a new task on the host)
        stack.timings[f"{hostname}_vms_asked_s"] = round(stack.clock() - began, 3)

    # --- the hosts ----------------------------------------------------------

    def _host(self, host: int) -> Host:
        """The simulated host behind the trial's node `host` (nodes are in hostname order)."""
        hostname = self.stack.nodes[host].hostname
        index = hostname.removeprefix("host")
        if not index.isdigit():
            raise ConfigError("host", f"node {hostname} is not a host of {self.layout.name}")
        return self.layout.host(int(index))

    def _network(self) -> Any:
        return self.outer.networks.get(self.layout.network)
