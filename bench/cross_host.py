"""7. Delivery latency across hosts: two probes on the simulated cluster's overlay network.

The latency benchmark's probe (bench.probe: vm_node's Codec + PeerLink into a
vm_node Receiver, beside a raw blocking socket between the same two containers)
runs in the VM image on the hosts' own engines, both ends on one attachable
overlay network: once with server and client on different hosts (the overlay's
VXLAN between them) and once on the same host, in the same run. The hosts share
this machine's kernel, so `time.time_ns()` on both ends gives one-way times.

Needs a simulated cluster (`clocklab cluster up`); without one the section says so.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.containers import AS_A_VM, PYTHON
from bench.context import Context
from bench.latency import COUNT, INTERVAL, ROUNDS, measure, median_round
from bench.report import Figure, Section, Target
from orchestrator.cluster.backend import prepare_image
from orchestrator.cluster.hosts import inner_client
from orchestrator.cluster.layout import Layout
from orchestrator.engine import LABEL_RUN, LABEL_SESSION, SESSION_ENV

NAME = "cross_host"
TITLE = "Delivery latency across hosts (overlay) and on one host, vs raw sockets"
PROBE = (Path(__file__).parent / "probe.py").read_text()  # run with -c: no bench/ on the hosts
SERVER_HOST, OTHER_HOST = 1, 2  # host0 manages the swarm: keep its engine for that
PORTS = ["--raw-port", "6000", "--vm-port", "6001"]
TARGET_RATIO = 2.0  # cross-host delivery over same-host delivery (p50)


class Probes:
    """Probe containers on the cluster's hosts, on one overlay network of their own."""

    def __init__(self, layout: Layout, image: str, session: str) -> None:
        self.layout, self.image = layout, image
        self.run = f"bench-{secrets.token_hex(3)}"
        self.labels = {LABEL_RUN: self.run, LABEL_SESSION: session}
        self.engines = {h.index: inner_client(h) for h in layout.all_hosts()}
        self.network = f"{self.run}-overlay"

    @contextlib.contextmanager
    def overlay(self) -> Iterator[None]:
        manager = self.engines[0]
        network = manager.networks.create(
            self.network, driver="overlay", attachable=True, labels=self.labels
        )
        try:
            yield
        finally:
            for engine in self.engines.values():
                for c in engine.containers.list(
                    all=True, filters={"label": f"{LABEL_RUN}={self.run}"}
                ):
                    with contextlib.suppress(Exception):
                        c.remove(force=True)
            with contextlib.suppress(Exception):
                network.remove()
            for engine in self.engines.values():
                engine.close()

    def start(self, host: int, args: list[str], name: str) -> Any:
        """`bench.probe ARGS` in the VM image on `host`, restricted as a VM is."""
        return self.engines[host].containers.run(
            self.image,
            entrypoint=[PYTHON, "-c", PROBE],
            command=args,
            detach=True,
            name=name,
            network=self.network,
            labels=self.labels,
            **AS_A_VM,
        )

    def pair(self, server_host: int, client_host: int, count: int) -> dict[str, Any]:
        """One round between a server on `server_host` and a client on `client_host`."""
        tag = secrets.token_hex(2)
        server = self.start(server_host, ["serve", *PORTS], f"{self.run}-server-{tag}")
        server.reload()
        address = server.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
        client_args = ["client", "--host", address, *PORTS, "--count", str(count)]
        client = self.start(
            client_host, [*client_args, "--interval", repr(INTERVAL)], f"{self.run}-client-{tag}"
        )
        return measure(orjson.loads(_output(client)), orjson.loads(_output(server)))


def _output(container: Any, timeout: float = 300) -> bytes:
    status = container.wait(timeout=timeout)
    if status.get("StatusCode") != 0:
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        raise RuntimeError(f"{container.name} exited {status}: {err.strip()[-500:]}")
    out: bytes = container.logs(stdout=True, stderr=False)
    return out


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "path",
            "messages",
            "delivery p50 (µs)",
            "delivery p99 (µs)",
            "raw one-way p50",
            "raw one-way p99",
            "delivery / raw one-way (p50)",
        ),
    )
    layout = Layout()
    if not layout.manager.socket.exists():
        section.notes.append("skipped: no simulated cluster here (`clocklab cluster up` first)")
        return section
    layout = Layout(hosts=len(inner_client(layout.manager).nodes.list()))
    if layout.hosts < 3:
        section.notes.append(f"skipped: the cluster has {layout.hosts} hosts, this needs 3")
        return section
    image = prepare_image(layout, lambda line: print(f"  image: {line}"))
    probes = Probes(layout, image, os.environ.get(SESSION_ENV, "bench"))
    count, rounds = COUNT[ctx.quick], ROUNDS[ctx.quick]
    paths = {
        f"host{SERVER_HOST} to host{OTHER_HOST} (overlay)": (OTHER_HOST, SERVER_HOST),
        f"host{SERVER_HOST} to host{SERVER_HOST} (overlay, one host)": (SERVER_HOST, SERVER_HOST),
    }
    results: dict[str, Any] = {}
    with probes.overlay():
        for path, (client, server) in paths.items():
            print(f"  {path}: {rounds} round(s) of {count:,} messages")
            results[path] = median_round(
                [probes.pair(server, client, count) for _ in range(rounds)]
            )
    for path, m in results.items():
        d, raw = m["delivery_us"], m["raw_oneway_us"]
        section.add_row(path, m["messages"], d["p50"], d["p99"], raw["p50"], raw["p99"],
                        f"{d['p50'] / raw['p50']:.2f}")  # fmt: skip
    cross, same = (results[p]["delivery_us"]["p50"] for p in paths)
    cross_raw, same_raw = (results[p]["raw_oneway_us"]["p50"] for p in paths)
    section.figures.append(
        Figure(
            "delivery latency p50, cross-host / same-host",
            cross,
            "µs",
            reference=same,
            reference_name="same host",
            target=Target("at_most", TARGET_RATIO, "x"),
            target_on="ratio",
            note=f"raw sockets: {cross_raw:.0f} vs {same_raw:.0f} µs",
        )
    )
    section.data = results
    section.notes.append(
        f"{rounds} round(s) of {count:,} messages per path, one every {INTERVAL * 1e3:g} ms, "
        "the round with the median delivery / raw ratio shown; both paths on one attachable "
        "overlay network of the simulated cluster, in the same run; the hosts' engines use "
        "vfs and share this machine's cores"
    )
    return section
