"""VM faults on Swarm (kill, pause), and host_crash on real hosts, through the nodes' engines.

Each node's engine is reached by its Docker context (node_engines.py). A killed
VM comes back as a new task of its service, its next incarnation
(Stack.start_again).

A real host is not crashed: its engine stays up. host_crash kills every
VM of the trial on the node at once (one call each, in parallel) and
drains the node through the manager for the window, so that nothing is placed
there; at the end the node is made active again, its log volume is collected
(node_logs.py), and its VMs start again as new incarnations. A simulated
cluster's hosts crash for real (orchestrator.cluster.backend).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.backends.swarm.node_engines import NodeEngines
from orchestrator.backends.swarm.node_logs import NodeLogs
from orchestrator.backends.swarm.stack import Stack
from orchestrator.engine import LABEL_RUN, LABEL_VM
from orchestrator.errors import ConfigError, TrialError
from orchestrator.faults import Fault


class NodeFaults:
    """Kill (a new incarnation follows) and pause of single VMs of `stack`."""

    def __init__(self, stack: Stack, engines: NodeEngines) -> None:
        self.stack = stack
        self.engines = engines

    def kill(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.kill(container)

    def restart(self, vm: int) -> None:
        self.stack.start_again(vm)

    def pause(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.pause(container)

    def unpause(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.unpause(container)


class NodeCrashes:
    """host_crash on a swarm of real hosts: the trial's VMs on a node killed at once, the
    node drained for the window; its engine is not touched."""

    def __init__(self, stack: Stack, engines: NodeEngines, logs: NodeLogs | None = None) -> None:
        self.stack = stack
        self.engines = engines
        self.logs = logs

    def check_fault(self, field: str, fault: Fault, vms: int) -> None:
        """A host_crash names one of the swarm's nodes (backends.check_schedule asks)."""
        n = len(self.stack.nodes)
        if fault.kind == "host_crash" and fault.host is not None and fault.host >= n:
            problem = f"must be a host in 0..{n - 1} (the swarm has {n} nodes), got {fault.host}"
            raise ConfigError(f"{field}.host", problem)

    def crash_host(self, host: int) -> tuple[int, ...]:
        stack = self.stack
        node = stack.nodes[host]
        vms = stack.vms_on(node.hostname)
        client = self.engines.client(node.hostname)
        # the VMs only: the node's clock reader is the orchestrator's, and reads on
        running = client.api.containers(
            filters={"label": [f"{LABEL_RUN}={stack.plan.run}", LABEL_VM]}
        )
        began = stack.clock()
        with ThreadPoolExecutor(max(1, len(running))) as pool:
            failures = [f for f in pool.map(lambda c: _kill(client, c["Id"]), running) if f]
        stack.timings[f"{node.hostname}_killed_s"] = round(stack.clock() - began, 3)
        self._availability(host, "drain")
        if failures:
            raise TrialError(f"{node.hostname}: {'; '.join(failures)}")
        return vms

    def restart_host(self, host: int) -> None:
        """The node active again, its log volume collected, its VMs as their next
        incarnations."""
        stack = self.stack
        hostname = stack.nodes[host].hostname
        self._availability(host, "active")
        if self.logs is not None:  # before start_again, which resumes from the lines kept
            self.logs.collect(hostname)
        for vm in stack.vms_on(hostname):
            stack.start_again(vm)

    def _availability(self, host: int, availability: str) -> None:
        """Set node `host` to `drain` or `active` through the manager."""
        node = self.stack.client.nodes.get(self.stack.nodes[host].id)
        spec = dict(node.attrs["Spec"]) | {"Availability": availability}
        node.update(spec)


def _kill(client: Any, container: str) -> str | None:
    """Kill `container`; why it could not be, or None (one already gone is no failure)."""
    from docker.errors import APIError, NotFound

    try:
        client.api.kill(container)
    except NotFound:
        return None
    except APIError as e:
        if e.status_code != 409:  # 409: it stopped meanwhile
            return f"container {container[:12]} not killed: {e.explanation or e}"
    return None
