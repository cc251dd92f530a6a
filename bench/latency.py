"""3. Delivery latency: from a VM's send to the message sitting in the receiver's inbox.

bench.probe sends small messages one at a time (a pause between each, as
ticks are far apart) from one process to another, three ways over the same
path: vm_node's own `Codec.message` + `PeerLink.send` into a vm_node
`Receiver` whose handler is where a VM's inbox is (the time is taken as the
message is appended); a raw blocking socket timed on arrival (one-way); and a
raw round trip. Both ends read one clock (`time.time_ns()`, shared by every
process and container on a kernel), so one-way times need no halving.
Paths: loopback (two host processes) and two containers on one bridge network.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import orjson

from bench.containers import retried
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.stats import percentiles
from bench.throughput import free_ports

NAME = "latency"
TITLE = "Delivery latency, send to the receiver's inbox, vs raw sockets"
COUNT = {False: 1000, True: 500}  # messages per round
ROUNDS = {False: 3, True: 1}  # the round with the median ratio is reported: the machine is noisy
INTERVAL = 0.001  # seconds between two messages
TARGET_RATIO = 2.0


def loopback(count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    raw_port, vm_port = free_ports(2)
    ports = ["--raw-port", str(raw_port), "--vm-port", str(vm_port)]
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.probe", "serve", *ports], stdout=subprocess.PIPE
    )
    try:
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.probe",
                "client",
                "--host",
                "127.0.0.1",
                *ports,
                "--count",
                str(count),
                "--interval",
                repr(INTERVAL),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return orjson.loads(client.stdout), orjson.loads(out)


def containers(ctx: Context, count: int) -> tuple[dict[str, Any], dict[str, Any]]:
    docker = ctx.docker
    assert docker is not None
    ports = ["--raw-port", "6000", "--vm-port", "6001"]
    with docker.network() as network:
        name = f"{docker.run}-server"
        server = docker.start("probe", ["serve", *ports], network=network, name=name)
        client = docker.start(
            "probe",
            ["client", "--host", name, *ports, "--count", str(count), "--interval", repr(INTERVAL)],
            network=network,
            name=f"{docker.run}-client",
        )
        sent = docker.output(client)
        arrived = docker.output(server, timeout=30)
    return orjson.loads(sent), orjson.loads(arrived)


def measure(sent: dict[str, Any], arrived: dict[str, Any]) -> dict[str, Any]:
    n = len(sent["vm_sends"])
    expected = [f"0-0-{i}" for i in range(n)]
    if arrived["vm_ids"] != expected or len(arrived["raw_arrivals"]) != len(sent["raw_sends"]):
        raise RuntimeError("the probe lost or reordered messages: the figures would be wrong")
    vm = np.subtract(arrived["vm_arrivals"], sent["vm_sends"])
    raw = np.subtract(arrived["raw_arrivals"], sent["raw_sends"])
    rtt = np.asarray(sent["raw_round_trips"])
    return {
        "messages": n,
        "line_bytes": sent["line_bytes"],
        "delivery_us": percentiles(vm, 1e-3),
        "raw_oneway_us": percentiles(raw, 1e-3),
        "raw_round_trip_us": percentiles(rtt, 1e-3),
        "raw_half_round_trip_us": percentiles(rtt, 0.5e-3),
    }


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def ratio(m: dict[str, Any]) -> float:
        return float(m["delivery_us"]["p50"] / m["raw_oneway_us"]["p50"])

    ordered = sorted(rounds, key=ratio)
    return ordered[len(ordered) // 2] | {"round_ratios": [ratio(m) for m in rounds]}


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
            "raw round trip p50",
            "round trip p99",
            "delivery / raw one-way (p50)",
        ),
    )
    count, rounds = COUNT[ctx.quick], ROUNDS[ctx.quick]
    paths: dict[str, Any] = {}
    print(f"  loopback: {rounds} round(s) of {count:,} messages each way")
    paths["loopback"] = median_round([measure(*loopback(count)) for _ in range(rounds)])
    if ctx.docker:
        print(f"  between two containers: {rounds} round(s) of {count:,} messages each way")
        paths["containers"] = median_round(
            [
                retried("the probe containers", lambda: measure(*containers(ctx, count)))
                for _ in range(rounds)
            ]
        )
    else:
        section.notes.append(f"between containers: skipped ({ctx.docker_missing})")
    for path, m in paths.items():
        d, raw, rtt = m["delivery_us"], m["raw_oneway_us"], m["raw_round_trip_us"]
        section.add_row(
            path,
            m["messages"],
            d["p50"],
            d["p99"],
            raw["p50"],
            raw["p99"],
            rtt["p50"],
            rtt["p99"],
            f"{d['p50'] / raw['p50']:.2f}",
        )
        section.figures.append(
            Figure(
                f"delivery latency p50, {path}",
                d["p50"],
                "µs",
                reference=raw["p50"],
                reference_name="raw socket one-way",
                target=Target("at_most", TARGET_RATIO, "x"),
                target_on="ratio",
                note=f"p99 {d['p99']:.0f} µs",
            )
        )
    section.data = paths
    section.notes.append(
        f"{rounds} round(s) of {count:,} messages of {paths['loopback']['line_bytes']} bytes "
        "(the round with the median delivery / raw ratio is shown), one every "
        f"{INTERVAL * 1e3:g} ms; delivery starts before `Codec.message` encodes it and ends as "
        "the Receiver hands the decoded message over (acks and all); raw one-way: blocking "
        "sockets, TCP_NODELAY, timed before `sendall` and after `recv`"
    )
    return section
