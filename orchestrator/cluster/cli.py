"""`clocklab cluster up|status|down`: a simulated multi-host cluster on this machine."""

from __future__ import annotations

import argparse
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from orchestrator.cluster.layout import DEFAULT_NAME, MAX_HOSTS, Layout

if TYPE_CHECKING:
    from rich.console import Console


@cache
def _console() -> Console:
    """Made when a cluster command runs: rich is not imported by every `clocklab` command."""
    from rich.console import Console

    return Console(stderr=True)


def add_commands(commands: Any) -> None:
    """Register `cluster` and its subcommands on the `clocklab` parser."""
    cluster = commands.add_parser(
        "cluster", help="a simulated multi-host cluster on this machine (Docker in Docker)"
    )
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="hosts host0..N-1, a swarm across them, contexts")
    up.add_argument(
        "--hosts", type=_host_count, default=3, help="how many hosts (default %(default)s)"
    )
    up.set_defaults(func=cmd_up)
    status = actions.add_parser("status", help="each host: container, engine, node, image")
    status.set_defaults(func=cmd_status)
    down = actions.add_parser("down", help="remove every host, volume, network and context")
    down.set_defaults(func=cmd_down)


def _host_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_HOSTS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_HOSTS}, got {value}")
    return value


def cmd_up(args: argparse.Namespace) -> int:
    from orchestrator.cluster.formation import image_name
    from orchestrator.cluster.lifecycle import Cluster
    from orchestrator.engine import connect_from_env
    from orchestrator.image import ensure_image

    started = time.monotonic()
    console = _console()

    def say(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f} s[/] {line}", soft_wrap=True)

    engine = connect_from_env()
    layout = Layout(hosts=args.hosts, engine=engine.endpoint.host, session=engine.session)
    image = image_name(engine.client, ensure_image(engine.client, progress=say))
    Cluster(layout, engine.client, say).up(image)
    console.print(
        f"[green]cluster up[/]: {layout.hosts} hosts in {time.monotonic() - started:.1f} s. "
        f"Try `docker --context {layout.manager_context} node ls`, or a trial: "
        f"`clocklab up --backend swarm --context {layout.manager_context} --vms "
        f"{2 * layout.hosts}`"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.cluster.status import cluster_status
    from orchestrator.engine import connect_from_env
    from orchestrator.image import IMAGE
    from orchestrator.image.base import find_image
    from orchestrator.image.build import source_tag
    from orchestrator.resources import CHECKOUT

    console = _console()
    outer = connect_from_env().client
    # this checkout's build, the one a trial ships (clocklab-vm:latest may be another's)
    image = find_image(outer, source_tag(CHECKOUT)) or find_image(outer, IMAGE)
    rows = cluster_status(outer, Layout(), image.id if image is not None else None)
    if not rows:
        console.print(f"no cluster: `clocklab cluster up` makes {DEFAULT_NAME}")
        return 1
    from rich.table import Table

    table = Table("host", "container", "engine", "swarm node", "VM image", "context")
    for row in rows:
        table.add_row(
            row.hostname,
            row.container,
            row.engine,
            row.node,
            "yes" if row.vm_image else "[red]no[/]",
            "yes" if row.context else "[red]no[/]",
        )
    console.print(table)
    healthy = all(r.container == "running" and r.vm_image and r.context for r in rows)
    return 0 if healthy and all(r.node.endswith("ready") for r in rows) else 1


def cmd_down(args: argparse.Namespace) -> int:
    from orchestrator.cluster.lifecycle import Cluster, refuse_inner_engine
    from orchestrator.engine import connect_from_env

    started = time.monotonic()
    console = _console()
    outer = connect_from_env().client
    refuse_inner_engine(outer)
    removed = Cluster(Layout(), outer, console.print).down()
    took = time.monotonic() - started
    console.print(f"removed {', '.join(removed) or 'nothing'} ({took:.1f} s)")
    return 0
