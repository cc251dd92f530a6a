"""Joining machines over ssh: `clocklab cluster join` of three bare hosts, timed as a user runs it.

- `clocklab cluster up --bare --hosts 3` (untimed, with the host image and the VM
  image built first): three simulated hosts with sshd and an engine each, and
  nothing that says they are simulated.
- The first `clocklab cluster join ssh://root@ADDRESS ...`: checks, a swarm
  formed, contexts, the VM image loaded into each host over ssh.
- The same join again with the image unchanged: checks and nothing else to do.
- `clocklab cluster down`: the swarm dissolved and the contexts gone.

The ssh client's key, known_hosts and config are the bench's own
(bench.ssh_access), and so is the docker CLI's config (DOCKER_CONFIG): the
user's are untouched. Where a simulated cluster exists already the benchmark
is skipped: the bare hosts would take its hosts' names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.context import Context
from bench.report import Figure, Section, Target
from bench.ssh_access import SshAccess
from orchestrator.cluster import hosts
from orchestrator.cluster.host_image import ensure_host_image
from orchestrator.cluster.layout import Layout
from orchestrator.image import ensure_image

NAME = "join"
TITLE = "Joining machines over ssh: `clocklab cluster join` of 3 hosts, the VM image included"
HOSTS = 3
BARE = Layout(hosts=HOSTS, name="clocklab-bench-bare", bare=True)
CLUSTER = [sys.executable, "-m", "orchestrator.cli", "cluster"]
FIRST_S, AGAIN_S = 60.0, 10.0  # targets, seconds


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE, columns=("step", "measured", "detail"))
    if ctx.docker is None:
        section.notes.append(f"skipped: {ctx.docker_missing}")
        return section
    client = ctx.docker.client
    if hosts.host_containers(client):
        section.notes.append("skipped: a simulated cluster exists here (its hosts' names)")
        return section
    ssh = SshAccess(ctx.work / "join-ssh")
    env = ssh.env(os.environ) | {"DOCKER_CONFIG": str(ctx.work / "join-docker")}
    ensure_host_image(client, BARE.host_image, lambda line: print(f"  {line}"))
    ensure_image(client, progress=lambda line: print(f"  image: {line}"))
    bare = ["--name", BARE.name]
    try:
        key = ["--authorized-key", str(ssh.public_key)]
        up_s = _timed(["up", "--bare", "--hosts", str(HOSTS), *key, *bare], env)
        section.add_row(
            f"`cluster up --bare --hosts {HOSTS}`", f"{up_s:.1f} s", "the hosts, before the join"
        )
        machines = [f"ssh://root@{hosts.host_address(client, BARE, h)}" for h in BARE.all_hosts()]
        first_s = _timed(["join", *machines], env)
        section.add_row(
            f"first `cluster join` of {HOSTS} hosts",
            f"{first_s:.1f} s",
            "checks, a swarm formed, contexts, the VM image loaded into each over ssh",
        )
        again_s = _timed(["join", *machines], env)
        section.add_row("`cluster join` again, image unchanged", f"{again_s:.1f} s", "checks only")
        down_s = _timed(["down"], env)
        section.add_row("`cluster down`", f"{down_s:.1f} s", "swarm dissolved, contexts removed")
    finally:
        _timed(["down"], env)
        _timed(["down", *bare], env)
    section.figures += [
        Figure(
            f"cluster join, {HOSTS} hosts over ssh",
            first_s,
            "s",
            target=Target("at_most", FIRST_S, "s"),
            note="the VM image shipped to each",
        ),
        Figure(
            "cluster join again (image unchanged)",
            again_s,
            "s",
            target=Target("at_most", AGAIN_S, "s"),
        ),
    ]
    section.data = {"up_bare_s": up_s, "join_s": first_s, "join_again_s": again_s, "down_s": down_s}
    return section


def _timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds `clocklab cluster ARGS` took; RuntimeError with its last words where it failed."""
    print(f"  clocklab cluster {' '.join(args)}")
    began = time.monotonic()
    done = subprocess.run([*CLUSTER, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True)
    took = time.monotonic() - began
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-800:]
        raise RuntimeError(f"clocklab cluster {args[0]} exited {done.returncode}: {said}")
    return took
