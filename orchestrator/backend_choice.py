"""Which backend a command's trials run on, and the factory that makes one for each trial.

The sim backend needs no engine and makes no backend: its trials run in
virtual time (`trial_of` gives each one its SimTrial).

The engine and the VM image are resolved once per command and shared by every
trial's backend. Nothing falls back quietly: where no engine answers and no
backend was asked for, the trials run locally and a warning says why; where
the swarm's nodes cannot be reached (for kill, pause, partitions, a real host's
crash and their log volumes), a schedule that needs them is refused here, naming
the missing contexts and the command that makes them, and one that needs none
runs after a warning saying what is missing.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from orchestrator.backends import CAPABILITIES, BackendFactory
from orchestrator.backends.local import LocalBackend
from orchestrator.backends.sim import SimTrial, Simulated
from orchestrator.engine import Engine, connect_from_env
from orchestrator.errors import BackendUnavailable
from orchestrator.events import Level, Notice, Reporter, ignore
from orchestrator.fidelity import RATE_TOLERANCE
from orchestrator.image import IMAGE, ensure_image
from orchestrator.plan import TrialPlan
from orchestrator.trial import Trial

if TYPE_CHECKING:
    from orchestrator.backends.swarm.node_engines import NodeEngines
    from orchestrator.backends.swarm.tasks import Node
    from orchestrator.cluster.layout import Layout
    from orchestrator.cluster.record import JoinRecord

# What the swarm backend does through each node's engine (host_partition too, off a
# simulated cluster).
NODE_FAULTS = ("kill", "pause", "partition", "host_partition")
# Where a command's trials run: a backend made for each, or virtual time.
Backends: TypeAlias = "BackendFactory | Simulated"


def backend_factory(
    name: str | None, context: str | None, report: Reporter, needs: Collection[str] = ()
) -> Backends:
    """Makes the named backend for each trial; by default docker where an engine answers,
    else local. `needs` are the fault kinds the command's schedules name."""
    if name == "sim":
        return Simulated()
    if name == "local":
        return LocalBackend
    try:
        engine = connect_from_env(context)
        if name == "swarm":
            return _swarm(engine, report, needs)
        return _compose(engine, report)
    except BackendUnavailable as e:
        if name is not None:
            raise
        lacking = sorted(k for k in needs if k in CAPABILITIES and k not in _local_faults())
        if lacking:  # local would only refuse the schedule: the engine is what is missing
            raise BackendUnavailable(
                f"{e}\nThe local backend cannot {', '.join(lacking)}, which the schedule needs: "
                "start the engine, or choose one with --context"
            ) from None
        first_line = str(e).splitlines()[0]
        report(
            Notice(
                f"{first_line}: running on the local backend instead "
                "(--backend local chooses it without this warning)",
                Level.WARNING,
            )
        )
        return LocalBackend


def trial_of(
    plan: TrialPlan,
    backends: Backends,
    out: Path,
    report: Reporter = ignore,
    rate_tolerance: float = RATE_TOLERANCE,
) -> Trial | SimTrial:
    """The trial of `plan` on the chosen backend, writing under `out`."""
    if isinstance(backends, Simulated):
        return SimTrial(plan, out, backends.tamper, rate_tolerance)
    return Trial(plan, backends, out, report, rate_tolerance=rate_tolerance)


def _local_faults() -> list[str]:
    return [kind for kind, offer in CAPABILITIES.items() if issubclass(LocalBackend, offer)]


def _image(engine: Engine, report: Reporter) -> str:
    return ensure_image(engine.client, progress=lambda line: report(Notice(f"image: {line}")))


def _compose(engine: Engine, report: Reporter) -> BackendFactory:
    from orchestrator.backends.compose import ComposeBackend
    from orchestrator.backends.compose.docker_compose import Compose

    compose = Compose(engine.endpoint)
    compose.version()  # Compose v2 present, before the image is built
    image = _image(engine, report)
    return lambda plan, run_dir: ComposeBackend(plan, run_dir, engine, image, compose, report)


def _swarm(engine: Engine, report: Reporter, needs: Collection[str]) -> BackendFactory:
    """The swarm backend; where every node has a context `<manager context>-<hostname>`,
    with kill, pause, partitions and (on real hosts) host_crash, and each VM's log kept on
    its node too; host faults on a simulated cluster."""
    from orchestrator.backends import Backend
    from orchestrator.backends.swarm import SwarmBackend
    from orchestrator.backends.swarm.docker_stack import StackCli
    from orchestrator.backends.swarm.node_cuts import NodeCuts
    from orchestrator.backends.swarm.node_faults import NodeCrashes, NodeFaults
    from orchestrator.backends.swarm.node_logs import NodeLogs
    from orchestrator.backends.swarm.stack import Stack, Swarm
    from orchestrator.backends.swarm.tasks import usable_nodes
    from orchestrator.cluster.backend import (
        HostFaults,
        outer_client,
        prepare_image,
        simulated_layout,
    )
    from orchestrator.cluster.join import ship_to_joined
    from vm_node.rundir import RunDir

    cli = StackCli(engine.endpoint)
    cli_version = cli.version()
    nodes = usable_nodes(engine.client)  # a swarm manager, before the image is built
    layout = simulated_layout(engine.client)  # None: real hosts
    node_engines = _node_engines(engine, nodes, layout, report, needs)

    def say(line: str) -> None:
        report(Notice(f"image: {line}"))

    if layout is not None:  # a simulated cluster (clocklab cluster up)
        outer = outer_client(layout)
        image = prepare_image(layout, outer, say)
    elif (joined := _joined(engine)) is not None:  # machines of `clocklab cluster join`
        image = ship_to_joined(joined, connect_from_env().client, say)
    else:
        image = _image(engine, report)
    local = engine.endpoint.host.startswith("unix://")  # this machine is the manager
    neighbours: Literal["all", "node", "none"] = (
        "all" if layout is not None else "node" if local else "none"
    )
    swarm = Swarm(engine, image, IMAGE, cli, cli_version, report, neighbours=neighbours)

    def make(plan: TrialPlan, run_dir: RunDir) -> Backend:
        stack = Stack(plan, run_dir, swarm, log_volume=node_engines is not None)
        parts: list[object] = []
        logs = None
        if node_engines is not None:
            logs = NodeLogs(stack, node_engines)
            parts.append(NodeFaults(stack, node_engines))
            if layout is None:
                parts.append(NodeCrashes(stack, node_engines, logs))
        if layout is not None:  # first: its host_partition cuts the host, not only its VMs
            parts.append(HostFaults(stack, layout, outer, logs))
        if node_engines is not None:
            parts.append(NodeCuts(stack, node_engines))
        facts = {"cluster": layout.name} if layout is not None else None
        return SwarmBackend(stack, tuple(parts), facts=facts, logs=logs)

    return make


def _joined(engine: Engine) -> JoinRecord | None:
    """The record of `clocklab cluster join` whose manager context reached `engine`, if any:
    the VM image is then built here and shipped to each of its nodes."""
    from orchestrator.cluster.record import Records

    if engine.endpoint.context is None:
        return None
    return Records.from_env().load(engine.endpoint.context)


def _node_engines(
    engine: Engine,
    nodes: list[Node],
    layout: Layout | None,
    report: Reporter,
    needs: Collection[str],
) -> NodeEngines | None:
    """The engines of the nodes, where each has its context; None after a warning where one
    lacks it, and BackendUnavailable instead where the schedule needs kill or pause."""
    from orchestrator.backends.swarm.node_engines import NodeEngines

    manager_context = layout.manager_context if layout else engine.endpoint.context
    if manager_context is None:
        why = (
            "the manager was reached without a named Docker context, so the nodes' contexts "
            "`<context>-<hostname>` cannot be named: reach it with --context NAME"
        )
    else:
        node_engines = NodeEngines(manager_context, engine.session)
        missing = node_engines.missing(nodes)
        if not missing:
            return node_engines
        why = _missing_contexts(node_engines, missing, layout)
    on_nodes = [k for k in NODE_FAULTS if not (layout and k == "host_partition")]
    if layout is None:  # a real host's crash goes through its engine; a simulated one's not
        on_nodes.append("host_crash")
    if wanted := [kind for kind in on_nodes if kind in needs]:
        raise BackendUnavailable(f"the swarm backend cannot {' or '.join(wanted)}: {why}")
    unavailable = ", ".join(on_nodes[:-1]) + f" and {on_nodes[-1]}"
    report(
        Notice(
            f"swarm: {unavailable} are unavailable, and a node that goes down takes the "
            f"log lines it had yet to send: {why}",
            Level.WARNING,
        )
    )
    return None


def _missing_contexts(engines: NodeEngines, missing: list[str], layout: Layout | None) -> str:
    """Which node contexts are missing, and the command that makes them."""
    named = ", ".join(missing)
    if layout is not None:
        return (
            f"no Docker context {named}; `clocklab cluster up --hosts {layout.hosts}` "
            "makes the cluster's contexts again"
        )
    first = missing[0]
    hostname = first.removeprefix(f"{engines.manager_context}-")
    return (
        f"no Docker context {named}; make each as "
        f"`docker context create {first} --docker host=ssh://USER@{hostname}`"
    )
