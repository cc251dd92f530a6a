"""The swarm backend: one `docker stack deploy` per trial, VMs spread over the swarm's nodes.

The stack (stack.py) starts, watches and removes the VMs. Faults are carried out
by parts the backend is made with: kill and pause through the engine of each
node (node_faults.py), partitions and hosts' VMs cut off by iptables beside the
VMs, through the same engines (node_cuts.py), and host faults by the hosts of a
simulated cluster (orchestrator.cluster). With no parts it offers no faults.
"""

from __future__ import annotations

import os
from typing import Any

from orchestrator.backends import carrier
from orchestrator.backends.swarm.node_cuts import NodeCuts
from orchestrator.backends.swarm.node_faults import NodeFaults
from orchestrator.backends.swarm.stack import Stack
from orchestrator.node_clocks import ClockNode, container_python


class SwarmBackend:
    name = "swarm"

    def __init__(
        self,
        stack: Stack,
        fault_parts: tuple[object, ...] = (),
        facts: dict[str, Any] | None = None,
    ) -> None:
        """`fault_parts` act on `stack`; `facts` go into the manifest beside the stack's."""
        self.stack = stack
        self.fault_parts = fault_parts
        self._facts = facts or {}

    def launch(self) -> None:
        self.stack.deploy()
        faults = self.stack.plan.experiment.faults
        for cuts in self._cuts():  # helpers only for the faults these cuts carry out
            cuts.prepare([f for f in faults if carrier(self.fault_parts, f.kind) is cuts])

    def exit_codes(self) -> dict[int, int | None]:
        return self.stack.exit_codes()

    def diagnose(self, vm: int) -> str:
        return self.stack.diagnose(vm)

    def teardown(self) -> None:
        try:
            for cuts in self._cuts():  # first: each helper sits in a VM's network namespace
                cuts.remove()
        finally:
            self.stack.remove()

    def _cuts(self) -> list[NodeCuts]:
        return [part for part in self.fault_parts if isinstance(part, NodeCuts)]

    def clock_nodes(self) -> list[ClockNode]:
        """Each node through its context (VM i runs on node i mod n); none without them."""
        engines = next((p.engines for p in self.fault_parts if isinstance(p, NodeFaults)), None)
        if engines is None:
            return []
        stack, plan = self.stack, self.stack.plan
        labels = stack.swarm.engine.labels(plan.run, plan.experiment.name, plan.trial)
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        n = len(stack.nodes)
        return [
            ClockNode(
                node.hostname,
                tuple(range(i, plan.vms, n)),
                container_python(stack.swarm.image_id, labels, engines.context(node.hostname)),
                env,
            )
            for i, node in enumerate(stack.nodes)
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.stack.describe(), **self._facts}
