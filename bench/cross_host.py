"""7. Across hosts: a simulated 3-host cluster made, used and removed as a user would.

- `clocklab cluster up --hosts 3` and `cluster down`, timed, where this benchmark
  makes the cluster (the host image is built first, untimed, as the VM image is);
  a cluster that exists already is used and left as it is.
- Delivery latency: the latency benchmark's probe (bench.probe: vm_node's Codec and
  PeerLink into a vm_node Receiver, beside a raw blocking socket between the same two
  containers) in the VM image on the hosts' own engines, both ends on one attachable
  overlay network: once on different hosts (the overlay's VXLAN between them) and once
  on one host. The hosts share this machine's kernel, so `time.time_ns()` on both ends
  gives one-way times.
- Rate fidelity over the hosts: 6 VMs, VM i on host i mod 3, at time scales 1 and
  20; reference: bench.deadline at the same real rates in one container on host1,
  just before each trial.
- Host faults (bench.host_faults): one trial with a host_partition and a host_crash;
  the slowest link back after the heal, and the crashed host's VMs linked to every
  peer after the host is back (its engine answering), and after its container started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.cluster import ClusterBusy, simulated_cluster
from bench.containers import AS_A_VM, PYTHON, Docker
from bench.context import Context
from bench.fidelity import REFERENCE_MAX, Reference, deadline_args, in_container, reference_from
from bench.host_faults import links_back, rejoined_at
from bench.latency import COUNT, INTERVAL, ROUNDS, measure, median_round
from bench.report import Figure, Section, Target
from bench.stats import worst
from bench.trials import TrialRun, TrialSpec, run_trial
from orchestrator.cluster.backend import outer_client, prepare_image
from orchestrator.cluster.hosts import inner_client
from orchestrator.cluster.layout import Layout
from orchestrator.engine import LABEL_RUN, LABEL_SESSION, SESSION_ENV

NAME = "cross_host"
TITLE = "Across hosts: a simulated 3-host cluster, its latency, rate fidelity and host faults"
PROBE = (Path(__file__).parent / "probe.py").read_text()  # run with -c: no bench/ on the hosts
SERVER_HOST, OTHER_HOST = 1, 2  # host0 manages the swarm: keep its engine for that
PORTS = ["--raw-port", "6000", "--vm-port", "6001"]
TARGET_RATIO = 2.0  # cross-host delivery over same-host delivery (p50)
HOSTS = 3
UP_S, DOWN_S = 60.0, 15.0  # targets, seconds
RATES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # VM i on host i mod 3: a slower and a faster VM each
FLEET = f"{len(RATES)} VMs on {HOSTS} hosts"
FIDELITY = {False: {1: 60.0, 20: 20.0}, True: {20: 3.0}}  # time scale -> real seconds
WITHIN_PCT = 0.01
FAULT_TRIAL = TrialSpec(  # 15 real seconds: the partition from 2 to 4, the crash from 6 to 9
    "bench-host-faults",
    vms=6,
    duration=60.0,
    time_scale=4.0,
    faults=(
        "{kind: host_partition, at: 8, duration: 8, host: 2}",
        "{kind: host_crash, at: 24, duration: 12, host: 1}",
    ),
)
LINKS_BACK_S, REJOIN_S = 2.0, 3.0  # targets, seconds


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
            for host, engine in self.engines.items():
                # Every host stays on the network between rounds: a host that leaves it
                # with its last container and joins again with the next one may never
                # learn where the other hosts' containers are ("No route to host").
                engine.containers.run(
                    self.image,
                    entrypoint=[PYTHON, "-c", "import signal; signal.pause()"],
                    detach=True,
                    name=f"{self.run}-anchor-{host}",
                    network=self.network,
                    labels=self.labels,
                    **AS_A_VM,
                )
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
        NAME, TITLE, columns=("measure", "measured", "reference (same run)", "detail")
    )
    if ctx.docker is None:
        section.notes.append(f"skipped: {ctx.docker_missing}")
        return section
    try:
        with simulated_cluster(ctx, HOSTS) as cluster:
            if cluster.up_s is not None:
                section.add_row(
                    f"`clocklab cluster up --hosts {HOSTS}`",
                    f"{cluster.up_s:.1f} s",
                    "–",
                    "loading the VM image into every host included; the host image was built "
                    "before",
                )
                up = Target("at_most", UP_S, "s")
                section.figures.append(
                    Figure(f"cluster up --hosts {HOSTS}", cluster.up_s, "s", target=up)
                )
            layout = cluster.layout
            image = prepare_image(
                layout, outer_client(layout), lambda line: print(f"  image: {line}")
            )
            _latency(ctx, section, layout, image)
            _fidelity(ctx, section, layout)
            _host_faults(ctx, section, layout)
    except ClusterBusy as e:
        section.notes.append(f"skipped: {e}")
        return section
    if cluster.down_s is not None:
        section.add_row("`clocklab cluster down`", f"{cluster.down_s:.1f} s", "–", "")
        down = Target("at_most", DOWN_S, "s")
        section.figures.append(Figure("cluster down", cluster.down_s, "s", target=down))
    else:
        section.notes.append("a cluster was here already: used as it was, and not timed")
    return section


def _latency(ctx: Context, section: Section, layout: Layout, image: str) -> None:
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
        section.add_row(
            f"delivery, {path}",
            f"p50 {d['p50']:.1f} µs, p99 {d['p99']:.1f} µs",
            f"raw one-way p50 {raw['p50']:.1f} µs, p99 {raw['p99']:.1f} µs",
            f"{m['messages']:,} messages; p50 {d['p50'] / raw['p50']:.2f}x raw",
        )
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
    section.data["latency"] = results
    section.notes.append(
        f"latency: {rounds} round(s) of {count:,} messages per path, one every "
        f"{INTERVAL * 1e3:g} ms, the round with the median delivery / raw ratio shown; both "
        "paths on one attachable overlay network of the cluster, in the same run"
    )


def _fidelity(ctx: Context, section: Section, layout: Layout) -> None:
    """The VMs over the hosts at each time scale, each after its reference on host1."""
    assert ctx.docker is not None
    on_host1: Docker = dataclasses.replace(ctx.docker, client=inner_client(layout.host(1)))
    section.data["fidelity"] = {}
    try:
        for scale, seconds in FIDELITY[ctx.quick].items():
            print(f"  {FLEET}, time scale {scale}: {seconds:g} s (reference first)")
            ref_seconds = min(seconds, REFERENCE_MAX[ctx.quick])
            ref = reference_from(
                in_container(on_host1, deadline_args(RATES, scale, ref_seconds), ref_seconds)
            )
            spec = TrialSpec.at_rates(f"bench-hosts-x{scale}", RATES, scale, seconds)
            trial = run_trial(spec, "swarm", ctx.work / NAME, context=layout.manager_context)
            _fidelity_row(section, trial, ref, seconds)
    finally:
        on_host1.remove_all()
        on_host1.client.close()


def _fidelity_row(section: Section, trial: TrialRun, ref: Reference, seconds: float) -> None:
    scale = trial.spec.time_scale
    measured = trial.worst_error_pct if trial.ok else float("nan")
    ref_worst = worst(ref.errors_pct)
    per_vm = " / ".join(f"{t.error_pct:+.5f}" for t in trial.timings)
    if not trial.ok:
        per_vm += f" (trial {trial.manifest.outcome or 'did not run'}: {trial.manifest.error})"
    section.add_row(
        f"worst VM rate error, {FLEET}, time scale {scale:g}, {seconds:g} s",
        f"{measured:.5f} %",
        f"{ref_worst:.5f} % (bare loop on host1)",
        f"per VM (%): {per_vm}",
    )
    section.figures.append(
        Figure(
            f"{HOSTS} hosts: worst VM rate error at time scale {scale:g} ({seconds:g} s)",
            measured,
            "%",
            reference=ref_worst,
            reference_name="bare asyncio deadline loop on host1",
            target=Target("at_most", WITHIN_PCT, "%"),
            ratio_of="none",
        )
    )
    section.data["fidelity"][f"{scale:g}"] = {
        "seconds": seconds,
        "errors_pct": [t.error_pct for t in trial.timings],
        "reference_errors_pct": ref.errors_pct,
        "outcome": trial.manifest.outcome,
    }


def _host_faults(ctx: Context, section: Section, layout: Layout) -> None:
    """One trial with a host_partition and a host_crash: how soon links and VMs came back."""
    from analysis.check import check_trial
    from analysis.load import load_trial

    print(
        f"  host faults: {FAULT_TRIAL.real_duration:g} s at time scale {FAULT_TRIAL.time_scale:g}"
    )
    trial = run_trial(FAULT_TRIAL, "swarm", ctx.work / NAME, context=layout.manager_context)
    if not trial.ok:
        raise RuntimeError(f"the host-fault trial {trial.manifest.outcome}: {trial.manifest.error}")
    verdict = check_trial(load_trial(trial.run_dir)).verdict
    partition, crash = trial.manifest.faults
    assert partition.start is not None and partition.end is not None and crash.end is not None
    back = links_back(trial.run_dir, partition.start, partition.end)
    slowest = max(back.values()) if back else float("nan")
    section.add_row(
        f"slowest link back after host{partition.host}'s partition heals",
        f"{slowest:.2f} s",
        "–",
        f"{len(back)} links were down; verdict {verdict.value}",
    )
    section.figures.append(
        Figure(
            f"{HOSTS} hosts: slowest link back after a host partition heals",
            slowest,
            "s",
            target=Target("at_most", LINKS_BACK_S, "s"),
        )
    )
    env = trial.manifest.environment
    host = f"host{crash.host}"
    engine_back, started = env[f"{host}_engine_back_s"], env[f"{host}_started_s"]
    rejoined = max(rejoined_at(trial.run_dir, FAULT_TRIAL.vms).values(), default=math.inf)
    after_engine = rejoined - (crash.end + engine_back)
    after_start = rejoined - (crash.end + started)
    section.add_row(
        f"{host}'s VMs linked to every peer after it crashed and is back",
        f"{after_engine:.2f} s after its engine answers",
        "–",
        f"{after_start:.2f} s after its container started; the engine answered "
        f"{engine_back - started:.2f} s after that",
    )
    section.figures.append(
        Figure(
            f"{HOSTS} hosts: a crashed host's VMs linked to every peer, after its engine answers",
            after_engine,
            "s",
            target=Target("at_most", REJOIN_S, "s"),
            note=f"{after_start:.2f} s after its container started",
        )
    )
    section.data["host_faults"] = {
        "verdict": verdict.value,
        "links_back_s": {f"{a}-{b}": s for (a, b), s in back.items()},
        "rejoin_after_engine_s": after_engine,
        "rejoin_after_container_start_s": after_start,
        "environment": env,
    }
