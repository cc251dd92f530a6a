"""The swarm backend on a simulated cluster: host faults and partitions through this
machine's engine, which runs the hosts (VM faults go through the hosts' own engines,
node_faults.py).

- host_partition: the host's container is disconnected from the cluster's network,
  and reconnected at its fixed address (the swarm knows its nodes by address).
- host_crash: the host's container is killed (its engine and VMs die with it) and
  started again; once its engine answers, each of its VMs starts again as a new
  incarnation (Stack.start_again).
- partition: only between whole hosts (each group a union of hosts under the
  placement, VM i on host i mod n); each host drops the other groups' hosts
  (iptables in its own network namespace, one chain of clocklab's).

The trial reaches the manager's engine; its labels say that it is a simulated
host and where this machine's engine is (layout.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.backends.swarm.stack import Stack
from orchestrator.cluster.formation import image_name, ship_image
from orchestrator.cluster.hosts import host_address, inner_client, wait_for_engine
from orchestrator.cluster.layout import LABEL_CLUSTER, LABEL_ENGINE, LABEL_HOST, Host, Layout
from orchestrator.engine import Endpoint, client_for
from orchestrator.errors import ConfigError, TrialError
from orchestrator.faults import Fault
from orchestrator.image import ensure_image

ENGINE_TIMEOUT = 30  # seconds per call to this machine's engine
CHAIN = "CLOCKLAB"  # the iptables chain of a partition, in each host


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
    """Whole hosts of a simulated cluster cut off, crashed and partitioned, under `stack`.

    `outer` is this machine's engine (outer_client)."""

    def __init__(self, stack: Stack, layout: Layout, outer: Any) -> None:
        self.stack = stack
        self.layout = layout
        self.outer = outer
        self._partitioned: list[Host] = []

    def check_fault(self, field: str, fault: Fault, vms: int) -> None:
        """A host fault names a node, not the manager's for a crash; a partition splits whole
        hosts (backends.check_schedule asks, before the trial touches anything)."""
        n = len(self.stack.nodes)
        if fault.host is not None and fault.host >= n:
            problem = f"must be a host in 0..{n - 1} (the swarm has {n} nodes), got {fault.host}"
            raise ConfigError(f"{field}.host", problem)
        if fault.kind == "host_crash" and self._host(fault.host or 0) == self.layout.manager:
            raise ConfigError(
                f"{field}.host", "host 0 is the swarm manager, which runs the trial: crash another"
            )
        if fault.kind == "partition":
            named = {vm for group in fault.groups for vm in group}
            if named != set(range(vms)):
                missing = sorted(set(range(vms)) - named)
                raise ConfigError(
                    f"{field}.groups", f"on Swarm a partition places every VM; {missing} in none"
                )
            for group in fault.groups:
                hosts = {vm % n for vm in group}
                spread = {vm for vm in range(vms) if vm % n in hosts}
                if spread - set(group):
                    raise ConfigError(
                        f"{field}.groups",
                        f"on Swarm a partition splits whole hosts (VM i runs on host i mod {n}); "
                        f"{sorted(group)} is not every VM of hosts {sorted(hosts)}",
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
        for vm in vms:
            stack.start_again(vm)
        # asked: the rest, until each VM runs again, is the swarm's (a new task on the host)
        stack.timings[f"{hostname}_vms_asked_s"] = round(stack.clock() - began, 3)

    # --- partition, between whole hosts -------------------------------------

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        n = len(self.stack.nodes)
        by_group = [sorted({vm % n for vm in group}) for group in groups]
        address = {h: host_address(self.outer, self.layout, self._host(h)) for h in range(n)}
        for mine in by_group:
            others = [address[h] for theirs in by_group if theirs is not mine for h in theirs]
            for h in mine:
                self._drop(self._host(h), others)

    def heal(self) -> None:
        for host in self._partitioned:
            self._iptables(host, f"iptables -F {CHAIN}")
        self._partitioned.clear()

    def _drop(self, host: Host, addresses: list[str]) -> None:
        """`host` drops every packet to and from `addresses` (the overlay and the swarm's)."""
        script = [f"{{ iptables -N {CHAIN} 2>/dev/null || iptables -F {CHAIN}; }}"]
        for chain, way in (("INPUT", "-s"), ("OUTPUT", "-d")):
            hooked = f"iptables -C {chain} -j {CHAIN} 2>/dev/null"
            script.append(f"{{ {hooked} || iptables -I {chain} -j {CHAIN}; }}")
            script += [f"iptables -A {CHAIN} {way} {a} -j DROP" for a in addresses]
        self._partitioned.append(host)
        self._iptables(host, " && ".join(script))

    def _iptables(self, host: Host, script: str) -> None:
        code, output = self.outer.containers.get(host.container).exec_run(["sh", "-c", script])
        if code != 0:
            said = output.decode(errors="replace").strip()
            raise TrialError(f"{host.hostname}: iptables failed ({said})")

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
