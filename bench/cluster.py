"""A simulated cluster for a benchmark: the one up already, or one made for it and removed.

A cluster that exists is used as it is and left (someone's, or made by hand); one of
another size is not touched: the benchmark skips its cluster rows (`ClusterBusy`).
Where the benchmark makes the cluster, `cluster up` and `down` are timed as a user
runs them (the host image is built first, untimed, as the VM image is).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.context import Context
from orchestrator.cluster.host_image import ensure_host_image
from orchestrator.cluster.hosts import inner_client
from orchestrator.cluster.layout import Layout

CLUSTER = [sys.executable, "-m", "orchestrator.cli", "cluster"]


class ClusterBusy(Exception):
    """A cluster of another size is up: it is not the benchmark's to replace."""


@dataclass(slots=True)
class SimulatedCluster:
    layout: Layout
    made: bool  # by the benchmark, which removes it after
    up_s: float | None = None  # `cluster up`, where the benchmark made it
    down_s: float | None = None  # `cluster down`, once it is removed


def hosts_up() -> int:
    """How many hosts the simulated cluster that is up has; 0 where none answers."""
    manager = Layout().manager
    if not manager.socket.exists():
        return 0
    try:
        return len(inner_client(manager).nodes.list())
    except Exception:  # an engine that does not answer: no cluster to use
        return 0


@contextlib.contextmanager
def simulated_cluster(ctx: Context, hosts: int) -> Iterator[SimulatedCluster]:
    """A cluster of `hosts` hosts while the block runs; ClusterBusy where one of another
    size is up."""
    if Layout().manager.socket.exists():
        found = hosts_up()
        if found != hosts:
            what = f"of {found} hosts" if found else "whose manager does not answer"
            raise ClusterBusy(f"a cluster {what} is here, this needs {hosts} hosts")
        yield SimulatedCluster(Layout(hosts=hosts), made=False)
        return
    cluster = SimulatedCluster(Layout(hosts=hosts), made=True)
    try:
        cluster.up_s = _timed(ctx, "up", "--hosts", str(hosts))
        yield cluster
    finally:
        cluster.down_s = _timed(ctx, "down")


def _timed(ctx: Context, *args: str) -> float:
    """Seconds `clocklab cluster ARGS` took."""
    assert ctx.docker is not None
    if args[0] == "up":
        ensure_host_image(ctx.docker.client, Layout().host_image, lambda line: print(f"  {line}"))
    print(f"  clocklab cluster {' '.join(args)}")
    began = time.monotonic()
    done = subprocess.run([*CLUSTER, *args], stdin=subprocess.DEVNULL, capture_output=True)
    took = time.monotonic() - began
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-800:]
        raise RuntimeError(f"clocklab cluster {args[0]} exited {done.returncode}: {said}")
    return took
