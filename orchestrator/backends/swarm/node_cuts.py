"""Partitions on any swarm: each VM's container cut off by iptables beside it (netcut.py),
the helper run through the engine of the VM's node (node_faults.NodeEngines).

- partition: any groups of VMs, as on the docker backend.
- host_partition: every VM on the host drops every VM not on it (rules on one side cut
  both ways). The swarm's own traffic to the host is not cut; on a simulated cluster,
  the host-level cut (orchestrator.cluster.backend) is used instead.

Helpers are made once the stack runs, beside every VM that a fault these cuts carry out
may cut; none where they carry out none.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.backends.netcut import NetworkCutter, Target, partition_drops
from orchestrator.backends.swarm.node_engines import NodeEngines
from orchestrator.backends.swarm.stack import Stack
from orchestrator.errors import ConfigError, TrialError
from orchestrator.faults import Fault


class NodeCuts:
    """Partitions of `stack`'s VMs, and its hosts' VMs cut off, through each node's engine."""

    def __init__(self, stack: Stack, engines: NodeEngines) -> None:
        self.stack = stack
        self.engines = engines
        plan = stack.plan
        labels = stack.swarm.engine.labels(plan.run, plan.experiment.name, plan.trial)
        self.cutter = NetworkCutter(stack.swarm.image_id, labels)

    def check_fault(self, field: str, fault: Fault, vms: int) -> None:
        n = len(self.stack.nodes)
        if fault.kind == "host_partition" and fault.host is not None and fault.host >= n:
            problem = f"must be a host in 0..{n - 1} (the swarm has {n} nodes), got {fault.host}"
            raise ConfigError(f"{field}.host", problem)

    def prepare(self, faults: Iterable[Fault]) -> None:
        """A helper beside each VM that one of `faults` (those of the schedule these cuts
        carry out) may cut, once the stack runs."""
        cuttable: set[int] = set()
        for fault in faults:
            if fault.kind == "partition":
                cuttable |= set(partition_drops(fault.groups))
            elif fault.kind == "host_partition" and fault.host is not None:
                cuttable |= set(self._on_host(fault.host))
        targets = self._targets()
        self.cutter.prepare(targets[vm] for vm in sorted(cuttable) if vm in targets)

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        self._cut(partition_drops(groups))

    def heal(self) -> None:
        self.cutter.heal()

    def cut_off_host(self, host: int) -> None:
        mine = set(self._on_host(host))
        others = [vm for vm in range(self.stack.plan.vms) if vm not in mine]
        self._cut({vm: others for vm in sorted(mine)})

    def reconnect_host(self, host: int) -> None:
        self.cutter.heal()

    def remove(self) -> None:
        self.cutter.remove()

    def _on_host(self, host: int) -> tuple[int, ...]:
        self.stack.located()  # the tasks as they are now
        return self.stack.vms_on(self.stack.nodes[host].hostname)

    def _cut(self, drops: dict[int, list[int]]) -> None:
        located = self.stack.located()
        targets = self._targets(located)
        named = set(drops) | {peer for peers in drops.values() for peer in peers}
        lacking = sorted(named - set(located))
        if lacking:
            raise TrialError(
                f"cannot cut {', '.join(f'vm{vm}' for vm in lacking)}: no running container"
            )
        self.cutter.cut(
            {targets[vm]: [located[peer][2] for peer in peers] for vm, peers in drops.items()}
        )

    def _targets(self, located: dict[int, tuple[str, str, str]] | None = None) -> dict[int, Target]:
        located = self.stack.located() if located is None else located
        return {
            vm: Target(vm, self.engines.client(hostname), container)
            for vm, (hostname, container, _) in located.items()
        }
