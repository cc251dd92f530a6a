"""`clocklab cluster up|join|status|down`: a simulated cluster on this machine, or real
machines joined over ssh."""

from __future__ import annotations

import argparse
import time
from functools import cache
from pathlib import Path
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
        "cluster",
        help="hosts for the swarm backend: simulated on this machine (Docker in Docker), "
        "or real machines joined over ssh",
    )
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="hosts host0..N-1, a swarm across them, contexts")
    up.add_argument(
        "--hosts", type=_host_count, default=3, help="how many hosts (default %(default)s)"
    )
    up.add_argument(
        "--bare",
        action="store_true",
        help="only the hosts, as bare machines with sshd: no swarm, contexts or VM image "
        "(`clocklab cluster join ssh://root@ADDRESS ...` makes those)",
    )
    up.add_argument(
        "--authorized-key",
        type=Path,
        metavar="PUBFILE",
        help="with --bare: an ssh public key (e.g. ~/.ssh/id_ed25519.pub) each host's root takes",
    )
    _name_option(up)
    up.set_defaults(func=cmd_up)
    join = actions.add_parser(
        "join",
        help="make machines a cluster: a swarm, contexts, the VM image on each",
    )
    join.add_argument(
        "machines",
        nargs="*",
        metavar="MACHINE",
        help="ssh://USER@HOST[:PORT] or the name of a Docker context; the first manages a "
        "swarm join forms",
    )
    join.add_argument(
        "--hosts-file",
        type=Path,
        help="a file naming machines, one a line (# starts a comment)",
    )
    _name_option(join)
    join.set_defaults(func=cmd_join)
    status = actions.add_parser("status", help="each host: container, engine, node, image")
    _name_option(status)
    status.set_defaults(func=cmd_status)
    down = actions.add_parser(
        "down",
        help="remove every simulated host, volume, network and context; of joined machines, "
        "only what join made",
    )
    _name_option(down)
    down.set_defaults(func=cmd_down)


def _name_option(parser: Any) -> None:
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help="the cluster's name, which its manager's context takes (default %(default)s)",
    )


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
    layout = Layout(
        hosts=args.hosts,
        name=args.name,
        engine=engine.endpoint.host,
        session=engine.session,
        bare=args.bare,
    )
    if layout.bare:
        return _up_bare(layout, engine.client, args.authorized_key, say, started)
    image = image_name(engine.client, ensure_image(engine.client, progress=say))
    Cluster(layout, engine.client, say).up(image)
    console.print(
        f"[green]cluster up[/]: {layout.hosts} hosts in {time.monotonic() - started:.1f} s. "
        f"Try `docker --context {layout.manager_context} node ls`, or a trial: "
        f"`clocklab up --backend swarm --context {layout.manager_context} --vms "
        f"{2 * layout.hosts}`"
    )
    return 0


def _up_bare(layout: Layout, outer: Any, key_file: Path | None, say: Any, started: float) -> int:
    from orchestrator.cluster.errors import ClusterError
    from orchestrator.cluster.hosts import authorize_key, host_address
    from orchestrator.cluster.lifecycle import Cluster

    key = None
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8")
        except OSError as e:
            raise ClusterError(f"--authorized-key {key_file}: {e.strerror}") from None
    Cluster(layout, outer, say).up(vm_image="")
    addresses = []
    for host in layout.all_hosts():
        if key is not None:
            authorize_key(outer, host, key)
        addresses.append(f"ssh://root@{host_address(outer, layout, host)}")
    how = "root takes the key" if key else "sshd, root by key (--authorized-key)"
    _console().print(
        f"[green]cluster up[/]: {layout.hosts} bare hosts in {time.monotonic() - started:.1f} s "
        f"({how}): `clocklab cluster join {' '.join(addresses)}`"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.cluster.record import Records
    from orchestrator.cluster.status import JOINED, cluster_status, joined_status
    from orchestrator.engine import connect_from_env
    from orchestrator.image import IMAGE
    from orchestrator.image.base import find_image
    from orchestrator.image.build import source_tag
    from orchestrator.resources import CHECKOUT

    console = _console()
    outer = connect_from_env().client
    # this checkout's build, the one a trial ships (clocklab-vm:latest may be another's)
    image = find_image(outer, source_tag(CHECKOUT)) or find_image(outer, IMAGE)
    image_id = image.id if image is not None else None
    rows = cluster_status(outer, Layout(name=args.name), image_id)
    record = Records.from_env().load(args.name)
    if record is not None:
        rows += joined_status(record, image_id)
    if not rows:
        console.print(
            f"no cluster {args.name}: `clocklab cluster up` makes one here, "
            "`clocklab cluster join` of machines"
        )
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
    running = all(r.container == "running" or r.container.startswith(JOINED) for r in rows)
    healthy = running and all(r.vm_image and r.context for r in rows)
    return 0 if healthy and all(r.node.endswith("ready") for r in rows) else 1


def cmd_join(args: argparse.Namespace) -> int:
    from orchestrator.cluster.join import Join
    from orchestrator.engine import connect_from_env

    started = time.monotonic()
    console = _console()

    def say(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f} s[/] {line}", soft_wrap=True)

    machines = list(args.machines)
    if args.hosts_file is not None:
        machines += _hosts_file(args.hosts_file)
    engine = connect_from_env()
    record = Join(args.name, engine.client, say).join(machines)
    console.print(
        f"[green]cluster joined[/]: {len(record.nodes)} machines in "
        f"{time.monotonic() - started:.1f} s, {record.manager.hostname} manages. "
        f"Try `docker --context {record.name} node ls`, or a trial: "
        f"`clocklab up --backend swarm --context {record.name} --vms {2 * len(record.nodes)}`"
    )
    return 0


def _hosts_file(path: Path) -> list[str]:
    from orchestrator.cluster.errors import ClusterError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ClusterError(f"--hosts-file {path}: {e.strerror}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def cmd_down(args: argparse.Namespace) -> int:
    from orchestrator.cluster.join import Join
    from orchestrator.cluster.lifecycle import Cluster, refuse_inner_engine
    from orchestrator.engine import connect_from_env

    started = time.monotonic()
    console = _console()
    engine = connect_from_env()
    outer = engine.client
    refuse_inner_engine(outer)
    removed = Join(args.name, outer, console.print).down()
    removed += Cluster(Layout(name=args.name), outer, console.print).down()
    took = time.monotonic() - started
    console.print(f"removed {', '.join(removed) or 'nothing'} ({took:.1f} s)")
    return 0
