"""The swarm backend: one `docker stack deploy` per trial, VMs spread over the swarm's nodes.

The stack (stack.py) starts, watches and removes the VMs. Faults are carried out
by parts the backend is made with: kill, pause and a real host's crash through
the engine of each node (node_faults.py), partitions and hosts' VMs cut off by
iptables beside the VMs, through the same engines (node_cuts.py), and host
faults by the hosts of a simulated cluster (orchestrator.cluster). With no
parts it offers no faults. Where it reaches each node's engine, each VM's log
is kept on its node too and collected after the trial (node_logs.py).
"""

from __future__ import annotations

import os
from typing import Any

from orchestrator.backends import carrier
from orchestrator.backends.swarm.node_cuts import NodeCuts
from orchestrator.backends.swarm.node_faults import NodeFaults
from orchestrator.backends.swarm.node_logs import NodeLogs
from orchestrator.backends.swarm.stack import Stack
from orchestrator.events import Level, Notice
from orchestrator.node_clocks import ClockNode, container_python


class SwarmBackend:
    name = "swarm"

    def __init__(
        self,
        stack: Stack,
        fault_parts: tuple[object, ...] = (),
        facts: dict[str, Any] | None = None,
        logs: NodeLogs | None = None,
    ) -> None:
        """`fault_parts` act on `stack`; `facts` go into the manifest beside the stack's;
        `logs` are the stack's log volumes, collected and removed at teardown."""
        self.stack = stack
        self.fault_parts = fault_parts
        self.logs = logs
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
            try:
                self.stack.remove()
            finally:
                if self.logs is not None and self.stack.deployed:
                    self._collect_logs(self.logs)

    def _cuts(self) -> list[NodeCuts]:
        return [part for part in self.fault_parts if isinstance(part, NodeCuts)]

    def _collect_logs(self, logs: NodeLogs) -> None:
        """Every node's log volume into the run directory, then the volumes removed;
        what failed is said, and the manifest names it."""
        logs.collect_all()
        logs.remove_volumes()
        if logs.problems:
            self.stack.swarm.report(Notice(f"node logs: {'; '.join(logs.problems)}", Level.WARNING))

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
        logs = self.logs.describe() if self.logs is not None else {}
        return {"backend": self.name, **self.stack.describe(), **logs, **self._facts}
