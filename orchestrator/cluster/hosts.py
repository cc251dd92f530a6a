"""The host containers, their network and engine volumes, and the cgroup folders they leave.

A host runs `dockerd` (its own cgroup parent) with only the capabilities and
the cgroup mount it needs, because some engines refuse --privileged. Its
engine's data is on a volume, not the container's overlay, its /run a tmpfs
(empty at each start, as after a reboot), and its socket is in a folder of this
machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestrator import subnets
from orchestrator.cluster.diagnosis import diagnose
from orchestrator.cluster.errors import ClusterError, NestedEngineError
from orchestrator.cluster.layout import (
    INNER_SOCKET_DIR,
    LABEL_CLUSTER,
    RUN_TMPFS,
    Host,
    Layout,
)
from orchestrator.errors import NoFreeSubnet
from orchestrator.poll import poll

CGROUP_ROOT = Path("/sys/fs/cgroup")
ENGINE_TIMEOUT = 60.0  # seconds for a host's engine to answer: far more than it takes
ENGINE_API_TIMEOUT = 120  # seconds per call to an inner engine, long enough for an image load
SUBNET_POOL = ipaddress.IPv4Network("172.31.0.0/16")  # the cluster's network: a free /24 of it
# Mounts and namespaces; iptables and bridges; and /proc/<pid>/ns of a VM (another user),
# which runc opens to start a container in its network namespace (netcut's helpers).
CAPABILITIES = ("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE")


def inner_client(host: Host) -> Any:
    """A Docker SDK client of `host`'s own engine, through its socket on this machine."""
    import docker

    return docker.DockerClient(base_url=host.docker_host, timeout=ENGINE_API_TIMEOUT)


def ensure_network(client: Any, layout: Layout) -> bool:
    """The cluster's network, on a subnet of its own; True when it was made now.

    The subnet is chosen here (not by the engine) so that each host keeps one
    address: the swarm knows its nodes by address, and a host that crashes or
    is cut off must come back where it was.
    """
    if client.networks.list(names=[layout.network], filters={"label": LABEL_CLUSTER}):
        return False
    from docker.types import IPAMConfig, IPAMPool

    subnet = free_subnet(subnets.in_use(client))
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))])
    client.networks.create(layout.network, driver="bridge", labels=layout.labels, ipam=ipam)
    return True


def free_subnet(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of SUBNET_POOL that overlaps no network of the engine."""
    try:
        return subnets.free(SUBNET_POOL, taken)
    except NoFreeSubnet as e:
        raise ClusterError(str(e)) from None


def host_address(client: Any, layout: Layout, host: Host) -> str:
    """The fixed address of `host` on the cluster's network: .10 + its index."""
    network = client.networks.get(layout.network)
    subnet = ipaddress.IPv4Network(network.attrs["IPAM"]["Config"][0]["Subnet"])
    return str(subnet[10 + host.index])


def ensure_host(client: Any, layout: Layout, host: Host, image: str) -> bool:
    """The host's container, started; True when it was made now."""
    import docker.errors

    try:
        container = client.containers.get(host.container)
    except docker.errors.NotFound:
        container = None
    if container is not None:
        if container.labels.get(LABEL_CLUSTER) != layout.name:
            raise ClusterError(
                f"a container named {host.container} exists and is not part of {layout.name}; "
                f"rename or remove it (`docker rm -f {host.container}`)"
            )
        refuse_lacking_capabilities(container, host)
        if container.status != "running":
            container.start()
        return False
    host.socket_dir.mkdir(parents=True, exist_ok=True)
    client.volumes.create(host.volume, labels=host.labels)
    try:
        client.containers.run(
            image,
            host.command(layout.engine, layout.bare),
            name=host.container,
            hostname=host.hostname,
            labels=host.labels,
            detach=True,
            init=True,
            cap_add=list(CAPABILITIES),
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            tmpfs=RUN_TMPFS,
            volumes={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                str(host.socket_dir): {"bind": INNER_SOCKET_DIR, "mode": "rw"},
                host.volume: {"bind": "/var/lib/docker", "mode": "rw"},
            },
            network=layout.network,
            networking_config={
                layout.network: client.api.create_endpoint_config(
                    ipv4_address=host_address(client, layout, host)
                )
            },
        )
    except docker.errors.APIError as e:
        discard_host(client, host)  # a container that could not start, and its volume
        text = str(e.explanation or e)
        finding = diagnose(text)
        if finding is not None:
            raise NestedEngineError(host.hostname, finding.missing, finding.evidence) from None
        raise ClusterError(f"could not start {host.container}: {text}") from None
    return True


def authorize_key(client: Any, host: Host, public_key: str) -> None:
    """Let the holder of `public_key` (one line of a .pub file) log in to `host` as root over
    ssh, as on a machine whose owner added it."""
    key = public_key.strip()
    if "\n" in key or not key.startswith(("ssh-", "ecdsa-", "sk-")):
        raise ClusterError(f"not an ssh public key (one line, as in id_ed25519.pub): {key[:40]!r}")
    script = (
        "mkdir -p -m 700 /root/.ssh && touch /root/.ssh/authorized_keys && "
        'chmod 600 /root/.ssh/authorized_keys && { grep -qxF "$1" /root/.ssh/authorized_keys '
        '|| printf "%s\\n" "$1" >> /root/.ssh/authorized_keys; }'
    )
    code, output = client.containers.get(host.container).exec_run(["sh", "-c", script, "sh", key])
    if code != 0:
        raise ClusterError(f"{host.hostname}: could not add the key: {output.decode().strip()}")


def refuse_lacking_capabilities(container: Any, host: Host) -> None:
    """ClusterError where `host`'s container lacks a capability a host has now (made by an
    earlier clocklab): capabilities are fixed when a container is made."""
    granted = {c.removeprefix("CAP_") for c in container.attrs["HostConfig"].get("CapAdd") or []}
    lacking = [c for c in CAPABILITIES if c not in granted]
    if lacking:
        raise ClusterError(
            f"{host.container} lacks the capabilities {', '.join(lacking)} that a host has now "
            "(it was made by an earlier clocklab): `clocklab cluster down`, then "
            "`clocklab cluster up`"
        )


def discard_host(client: Any, host: Host) -> None:
    """Remove `host`'s container and its engine's volume, where they exist."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(host.container, force=True, v=True)
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_volume(host.volume, force=True)


def wait_for_engine(client: Any, host: Host, timeout: float = ENGINE_TIMEOUT) -> Any:
    """`host`'s engine once it answers; NestedEngineError naming the cause if it stops."""
    import docker.errors

    found: list[Any] = []

    def answering() -> bool:
        container = client.containers.get(host.container)
        if container.status in ("exited", "dead"):
            raise engine_failure(client, host, "its engine stopped")
        if not host.socket.exists():
            return False
        try:
            found.append(inner_client(host))  # asks the engine for its API version
        except docker.errors.DockerException:
            return False
        return True

    if not poll(answering, timeout, interval=0.2):
        raise engine_failure(client, host, f"its engine did not answer within {timeout:g} s")
    return found[0]


def engine_failure(client: Any, host: Host, what: str, said: str = "") -> ClusterError:
    """The error for a host whose engine failed: the named cause where its words say it."""
    logs = said + "\n" + _logs(client, host)
    finding = diagnose(logs)
    if finding is not None:
        return NestedEngineError(host.hostname, finding.missing, finding.evidence)
    tail = "\n".join(logs.strip().splitlines()[-5:])
    return ClusterError(f"{host.hostname}: {what}; `docker logs {host.container}` ends:\n{tail}")


def _logs(client: Any, host: Host) -> str:
    import docker.errors

    try:
        raw: bytes = client.containers.get(host.container).logs(tail=200)
    except docker.errors.NotFound:
        return ""
    return raw.decode(errors="replace")


def cluster_containers(client: Any, name: str) -> list[Any]:
    """The cluster's host containers, by hostname."""
    found = client.containers.list(all=True, filters={"label": f"{LABEL_CLUSTER}={name}"})
    return sorted(found, key=lambda c: _index(c.name))


def host_containers(client: Any) -> list[Any]:
    """Every cluster's host containers."""
    return list(client.containers.list(all=True, filters={"label": LABEL_CLUSTER}))


def _index(container_name: str) -> int:
    digits = container_name.rsplit("host", 1)[-1]
    return int(digits) if digits.isdigit() else -1


def remove_everything(client: Any, name: str) -> list[str]:
    """Remove the cluster's containers, volumes and network; what was removed.

    All hosts at once: deleting an engine's layers can take seconds per host.
    """
    label = {"label": f"{LABEL_CLUSTER}={name}"}
    containers = {
        c["Names"][0].lstrip("/"): c["Id"] for c in client.api.containers(all=True, filters=label)
    }
    removed = _all_at_once(
        {
            f"container {n}": _removal(client.api.remove_container, i, force=True, v=True)
            for n, i in containers.items()
        }
    )
    volumes = [v.name for v in client.volumes.list(filters=label)]
    removed += _all_at_once(
        {f"volume {v}": _removal(client.api.remove_volume, v, force=True) for v in volumes}
    )
    for network in client.networks.list(filters=label):
        if _removal(network.remove)():
            removed.append(f"network {network.name}")
    return removed


def _removal(remove: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], bool]:
    """`remove(*args, **kwargs)` as a call that says whether it removed (False: gone already)."""

    def call() -> bool:
        import docker.errors

        try:
            remove(*args, **kwargs)
        except docker.errors.NotFound:
            return False
        return True

    return call


def _all_at_once(removals: dict[str, Callable[[], bool]]) -> list[str]:
    if not removals:
        return []
    with ThreadPoolExecutor(max_workers=len(removals)) as pool:
        done = {what: pool.submit(remove) for what, remove in removals.items()}
    return [what for what, future in done.items() if future.result()]


def cgroup_folders(host: Host, root: Path = CGROUP_ROOT) -> list[Path]:
    """The cgroup folders `host`'s engine made (one per controller), as they are now."""
    name = host.cgroup_parent.lstrip("/")
    return sorted(p for p in root.glob(f"*/{name}") if p.is_dir())


def remove_cgroup_folders(host: Host, root: Path = CGROUP_ROOT) -> list[str]:
    """Remove them depth first (a cgroup folder goes with rmdir, once it has no children)."""
    removed: list[str] = []
    for top in cgroup_folders(host, root):
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(FileNotFoundError):  # the engine removed it meanwhile
                folder.rmdir()
        with contextlib.suppress(FileNotFoundError):
            top.rmdir()
        removed.append(str(top))
    return removed
