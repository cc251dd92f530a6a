"""How far apart the VMs' clocks are, bounded by the trial's own messages.

Each VM's clock reads true time plus its offset `off`. A message from VM a to
VM b is logged at a's clock when sent and at b's when received, so
`recv_b - send_a = delay + off_b - off_a`; a delay is never negative, hence

    off_b - off_a <= min over a's messages to b of (recv_b - send_a)

and b's messages to a bound the same difference from below. Every VM pair gets
an interval (infinite on a side no message bounds).

A VM's offset is its node's clock plus its configured `skew:` (`clock_offset`
on its start line). VMs on one node share the node's clock, so a node pair's
interval is the tightest of its VM pairs' once their configured difference is
taken out, and two VMs on one node are exactly their configured difference
apart. Which VM ran where comes from the manifest: the nodes the orchestrator
measured, the swarm's placement, or one node for the backends that run every
VM on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl

from analysis.columns import Floats, Ints, TrialLog
from analysis.load.runs import load_trial
from vm_node.rundir import Manifest, NodeOffset

Bools: TypeAlias = npt.NDArray[np.bool_]
ONE_MACHINE = frozenset({"local", "docker", "synthetic", "sim"})  # backends: every VM on one host


@dataclass(frozen=True, slots=True)
class PairBounds:
    """`low[a, b] <= off_b - off_a <= high[a, b]`, in seconds (±inf where nothing bounds it)."""

    low: Floats
    high: Floats

    @classmethod
    def from_high(cls, high: Floats) -> PairBounds:
        """A bound from above on `off_b - off_a` is one from below on `off_a - off_b`."""
        return cls(low=-high.T, high=high)

    @property
    def width(self) -> Floats:
        return self.high - self.low

    def closed(self) -> PairBounds:
        """The bounds tightened through chains of VMs, `off_c - off_a <= high[a, b] + high[b, c]`:
        a pair no message joins directly is bounded through a third VM."""
        high = self.high.copy()
        for k in range(len(high)):
            high = np.minimum(high, high[:, k, None] + high[None, k, :])
        return PairBounds.from_high(high)

    def holds(self, difference: Floats) -> Bools:
        """Where `difference[a, b]` (an `off_b - off_a`) lies within the bounds."""
        inside: Bools = (self.low <= difference) & (difference <= self.high)
        return inside


@dataclass(frozen=True, slots=True)
class TrialOffsets:
    """A trial's clock offsets: bounded by its messages, configured, and measured on its nodes."""

    vms: PairBounds  # between VMs' clocks, as logged (configured skew included)
    configured: Floats  # each VM's `clock_offset` (s), from its start line
    nodes: tuple[str, ...]  # the nodes VMs ran on, in order of first VM
    node_of: Ints  # each VM's index into `nodes`
    hosts: PairBounds  # between the nodes' own clocks, from the VM pairs less their skew
    measured: tuple[NodeOffset, ...]  # the orchestrator's reads of each node's clock

    @property
    def same_node(self) -> Bools:
        same: Bools = self.node_of[:, None] == self.node_of[None, :]
        return same

    @property
    def configured_difference(self) -> Floats:
        """`configured[b] - configured[a]`: the pair's offset from `skew:` alone."""
        return self.configured[None, :] - self.configured[:, None]

    def measured_spread(self) -> float | None:
        """The largest `off_b - off_a` the orchestrator's reads of the nodes allow: each VM's
        node offset plus its configured skew, widened by both reads' uncertainty, at the start
        or at the end (two clocks drifting apart steadily are furthest apart at one of them).
        None when no phase has a read of every node."""
        spreads = []
        for phase in dict.fromkeys(m.phase for m in self.measured):
            reads = {m.node: m for m in self.measured if m.phase == phase}
            if not all(node in reads for node in self.nodes):
                continue
            offset = np.array([reads[self.nodes[i]].offset for i in self.node_of])
            offset = offset + self.configured
            uncertainty = np.array([reads[self.nodes[i]].uncertainty for i in self.node_of])
            spread = offset[None, :] - offset[:, None] + uncertainty[None, :] + uncertainty[:, None]
            spreads.append(float(spread.max()))
        return max(spreads, default=None)

    def tolerance(self) -> Floats:
        """`[a, b]`: how far (s) a receive on VM b may be logged before its send on VM a.

        On one node, exactly the configured difference: the VMs share the node's clock.
        Across nodes, what b's messages to a allow: the least `off_b - off_a` the logs admit.
        """
        across = -self.vms.low
        seconds: Floats = np.where(self.same_node, -self.configured_difference, across)
        return seconds + 0.0  # no -0.0 to print


def trial_offsets(trial: TrialLog) -> TrialOffsets:
    """The offsets of a loaded trial (see the module's docstring)."""
    configured = _configured(trial)
    vm_high = _least_apparent_delays(trial)
    nodes, node_of = placement(trial.manifest, trial.vms)
    host_high = np.full((len(nodes), len(nodes)), np.inf)
    np.fill_diagonal(host_high, 0.0)
    # off_b - off_a = host_b - host_a + configured[b] - configured[a]
    less_skew = vm_high - (configured[None, :] - configured[:, None])
    for p in range(len(nodes)):
        for q in range(len(nodes)):
            if p != q:
                block = less_skew[np.ix_(node_of == p, node_of == q)]
                host_high[p, q] = block.min(initial=np.inf)
    return TrialOffsets(
        vms=PairBounds.from_high(vm_high),
        configured=configured,
        nodes=nodes,
        node_of=node_of,
        hosts=PairBounds.from_high(host_high),
        measured=trial.manifest.node_offsets,
    )


def offset_bounds(run_dir: Path) -> TrialOffsets:
    """A trial's offset bounds per VM pair (`.vms`), per node pair (`.hosts`), and what was
    configured and measured, from its run directory."""
    return trial_offsets(load_trial(run_dir))


def placement(manifest: Manifest, vms: int) -> tuple[tuple[str, ...], Ints]:
    """The nodes and each VM's node: as measured, as the swarm placed them, or one machine.
    A VM nothing places is a node of its own: only its messages bound its clock."""
    where: dict[int, str] = {}
    for measured in manifest.node_offsets:
        where.update(dict.fromkeys(measured.vms, measured.node))
    placed = manifest.environment.get("placement")
    if not where and isinstance(placed, dict):
        where = {int(vm): str(node) for vm, node in placed.items() if str(vm).isdigit()}
    if not where and manifest.backend in ONE_MACHINE:
        where = dict.fromkeys(range(vms), manifest.backend)
    names = [where.get(vm, f"unplaced vm{vm}") for vm in range(vms)]
    nodes = tuple(dict.fromkeys(names))
    return nodes, np.array([nodes.index(n) for n in names], dtype=np.int64)


def _configured(trial: TrialLog) -> Floats:
    return np.array([trial.clock_offset(vm) for vm in range(trial.vms)], dtype=np.float64)


def _least_apparent_delays(trial: TrialLog) -> Floats:
    """`[a, b]`: the least `recv_b - send_a` over a's messages to b (inf: none; 0 on a == b)."""
    n = trial.vms
    high = np.full((n, n), np.inf)
    np.fill_diagonal(high, 0.0)
    known = trial.receive_send >= 0
    received = trial.receives.messages.row[known]
    sent = trial.sends.row[trial.receive_send[known]]
    vm, timestamp = trial.row_vm, trial.lines.timestamp
    least = (
        pl.DataFrame(
            {
                "a": vm[sent],
                "b": vm[received],
                "apparent": timestamp[received] - timestamp[sent],
            }
        )
        .filter(pl.col("a") != pl.col("b"))
        .group_by("a", "b")
        .agg(pl.col("apparent").min())
    )
    a, b = least["a"].to_numpy(), least["b"].to_numpy()
    inside = (a < n) & (b < n)
    high[a[inside], b[inside]] = least["apparent"].to_numpy()[inside]
    return high


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far (s) a receive on VM b may be logged before its send on VM a: `seconds[a, b]`.
    `skew` is set where `--skew` gave one number for every pair."""

    seconds: Floats
    skew: float | None = None

    @classmethod
    def of(cls, trial: TrialLog, skew: float | None = None) -> Tolerance:
        """`--skew` for every pair where given; else what the trial's offsets allow."""
        if skew is not None:
            return cls(np.full((trial.vms, trial.vms), skew), skew)
        return cls(trial_offsets(trial).tolerance())

    def per_message(self, sender: Ints, receiver: Ints) -> Floats:
        """Each message's tolerance; none for a VM beyond the trial's (reported elsewhere)."""
        n = len(self.seconds)
        known = (sender >= 0) & (sender < n) & (receiver >= 0) & (receiver < n)
        seconds = np.zeros(len(sender))
        seconds[known] = self.seconds[sender[known], receiver[known]]
        return seconds

    def exceeded(self, sender: int, receiver: int) -> str:
        """Why a receive logged too early breaks the rule, and what to do if the clocks differ."""
        if self.skew is not None:
            return (
                f"more than --skew {self.skew:g} s: clocks that far apart cannot order "
                f"vm{sender}'s send and vm{receiver}'s receive (a larger --skew, if their "
                "hosts' clocks may differ that much)"
            )
        allowed = self.seconds[sender, receiver]
        return (
            f"more than the {allowed:.6f} s the offset between vm{sender}'s and "
            f"vm{receiver}'s clocks allows (their configured skew on one host, else the "
            "messages between them; --skew, if their clocks may differ more)"
        )
