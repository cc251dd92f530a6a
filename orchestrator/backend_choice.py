"""Which backend a command's trials run on, and the factory that makes one for each trial.

The engine and the VM image are resolved once per command and shared by every
trial's backend. Nothing falls back quietly: where no engine answers and no
backend was asked for, the trials run locally and a warning says why; where
the swarm's nodes cannot be reached for kill and pause, a schedule that needs
them is refused here, naming the missing contexts and the command that makes
them, and one that needs none runs after a warning saying what is missing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from orchestrator.backends import CAPABILITIES, BackendFactory
from orchestrator.backends.local import LocalBackend
from orchestrator.engine import Engine, connect_from_env
from orchestrator.errors import BackendUnavailable
from orchestrator.events import Level, Notice, Reporter
from orchestrator.image import IMAGE, ensure_image

if TYPE_CHECKING:
    from orchestrator.backends.swarm.node_faults import NodeEngines
    from orchestrator.backends.swarm.tasks import Node
    from orchestrator.cluster.layout import Layout
    from orchestrator.cluster.record import JoinRecord

NODE_FAULTS = ("kill", "pause")  # what the swarm backend does through each node's engine


def backend_factory(
    name: str | None, context: str | None, report: Reporter, needs: Collection[str] = ()
) -> BackendFactory:
    """Makes the named backend for each trial; by default docker where an engine answers,
    else local. `needs` are the fault kinds the command's schedules name."""
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
    """The swarm backend; with kill and pause where every node has a context
    `<manager context>-<hostname>`, and host faults too on a simulated cluster."""
    from orchestrator.backends import Backend
    from orchestrator.backends.swarm import SwarmBackend
    from orchestrator.backends.swarm.docker_stack import StackCli
    from orchestrator.backends.swarm.node_faults import NodeFaults
    from orchestrator.backends.swarm.stack import Stack, Swarm
    from orchestrator.backends.swarm.tasks import usable_nodes
    from orchestrator.cluster.backend import (
        HostFaults,
        outer_client,
        prepare_image,
        simulated_layout,
    )
    from orchestrator.cluster.join import ship_to_joined
    from orchestrator.plan import TrialPlan
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
    swarm = Swarm(engine, image, IMAGE, cli, cli_version, report)

    def make(plan: TrialPlan, run_dir: RunDir) -> Backend:
        stack = Stack(plan, run_dir, swarm)
        parts: list[object] = []
        if node_engines is not None:
            parts.append(NodeFaults(stack, node_engines))
        if layout is None:
            return SwarmBackend(stack, tuple(parts))
        parts.append(HostFaults(stack, layout, outer))
        return SwarmBackend(stack, tuple(parts), facts={"cluster": layout.name})

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
    from orchestrator.backends.swarm.node_faults import NodeEngines

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
    if wanted := [kind for kind in NODE_FAULTS if kind in needs]:
        raise BackendUnavailable(f"the swarm backend cannot {' or '.join(wanted)}: {why}")
    report(Notice(f"swarm: kill and pause are unavailable: {why}", Level.WARNING))
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
