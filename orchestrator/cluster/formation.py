"""The swarm across the hosts (host0 manages, the others join) and the VM image on each.

Both are idempotent: a host already in the swarm, or already holding the
image (the same id), is left as it is.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from orchestrator.cluster.diagnosis import diagnose
from orchestrator.cluster.errors import ClusterError, NestedEngineError
from orchestrator.cluster.layout import Host
from orchestrator.poll import poll

SWARM_PORT = 2377
READY_TIMEOUT = 60.0  # seconds for every node to be Ready after joining: far more than it takes
PROBE_ENTRYPOINT = "python3"  # the VM image has it; a container that starts and ends at once

Progress = Callable[[str], None]


def swarm_state(inner: Any) -> tuple[str, bool]:
    """(LocalNodeState, whether this engine is a manager)."""
    swarm = inner.info().get("Swarm") or {}
    return str(swarm.get("LocalNodeState") or "inactive"), bool(swarm.get("ControlAvailable"))


def form_swarm(
    manager: Any, manager_address: str | None, workers: Sequence[tuple[Any, str | None]]
) -> list[str]:
    """Make `manager` a swarm manager and have each (engine, address) in `workers` join; an
    address None is the engine's choice.

    Returns what it did, one line each; nothing when the swarm stands already.
    """
    done: list[str] = []
    state, is_manager = swarm_state(manager)
    name = manager.info()["Name"]
    if state != "active":
        manager.swarm.init(advertise_addr=manager_address, listen_addr=f"0.0.0.0:{SWARM_PORT}")
        done.append(f"swarm made on {name}")
    elif not is_manager:
        raise ClusterError(
            f"{name} is in a swarm but not its manager: `clocklab cluster down` first"
        )
    manager.swarm.reload()
    token = manager.swarm.attrs["JoinTokens"]["Worker"]
    manager_address = manager_address or manager.info()["Swarm"]["NodeAddr"]
    for inner, address in workers:
        if swarm_state(inner)[0] == "active":
            continue
        inner.swarm.join(
            remote_addrs=[f"{manager_address}:{SWARM_PORT}"],
            join_token=token,
            advertise_addr=address,
            listen_addr=f"0.0.0.0:{SWARM_PORT}",
        )
        done.append(f"{inner.info()['Name']} joined")
    return done


def wait_until_ready(
    manager: Any,
    hostnames: Sequence[str],
    timeout: float = READY_TIMEOUT,
    context: str = "clocklab-cluster",
) -> None:
    """Until every host is a ready, active node of the swarm."""

    def missing() -> list[str]:
        ready = {
            n.attrs["Description"]["Hostname"]
            for n in manager.nodes.list()
            if n.attrs["Status"]["State"] == "ready" and n.attrs["Spec"]["Availability"] == "active"
        }
        return [h for h in hostnames if h not in ready]

    if not poll(lambda: not missing(), timeout, interval=0.2):
        raise ClusterError(
            f"{', '.join(missing())} not ready in the swarm {timeout:g} s after joining "
            f"(see `docker --context {context} node ls`)"
        )


def image_name(outer: Any, image_id: str) -> str:
    """A name of `image_id` to ship it by: its source tag, which no other checkout's build
    takes over (clocklab-vm:latest may be rebuilt by another checkout on this engine)."""
    tags = sorted(outer.images.get(image_id).tags)
    return next((t for t in tags if ":src-" in t), tags[0] if tags else image_id)


def ship_image(
    outer: Any, image: str, hosts: Sequence[tuple[str, Any]], say: Progress
) -> list[str]:
    """Load the outer engine's `image` (a name) into each (hostname, engine client) of
    `hosts` lacking it, through that engine's own API (no registry); which did.

    A host lacks it unless the name there is the same image (the same id). It
    is saved by name: an archive saved by id would load untagged.
    """
    image_id = outer.images.get(image).id
    lacking = [(host, inner) for host, inner in hosts if not _has(inner, image, image_id)]
    if not lacking:
        return []
    say(f"loading {image} into {', '.join(h for h, _ in lacking)}")
    with tempfile.TemporaryDirectory(prefix="clocklab-ship-") as tmp:
        archive = Path(tmp) / "image.tar"
        with archive.open("wb") as out:
            for chunk in outer.api.get_image(image):
                out.write(chunk)
        with ThreadPoolExecutor(max_workers=len(lacking)) as pool:
            loads = {pool.submit(_load, host, inner, archive): host for host, inner in lacking}
            for load in as_completed(loads):
                load.result()
                say(f"{loads[load]} holds {image}")
    return [h for h, _ in lacking]


def _has(inner: Any, image: str, image_id: str) -> bool:
    import docker.errors

    try:
        return bool(inner.images.get(image).id == image_id)
    except docker.errors.ImageNotFound:
        return False


def _load(hostname: str, inner: Any, archive: Path) -> None:
    import docker.errors

    try:
        with archive.open("rb") as data:
            errors = [str(part["error"]) for part in inner.api.load_image(data) if "error" in part]
    except docker.errors.DockerException as e:
        errors = [str(getattr(e, "explanation", None) or e)]
    if errors:
        raise _failure(hostname, "cannot load the VM image", "\n".join(errors))


def probe_containers(host: Host, inner: Any, image: str) -> None:
    """Start and end one container on `host`: its engine can make cgroups and mounts."""
    import docker.errors

    try:
        inner.containers.run(
            image, ["-c", "pass"], entrypoint=PROBE_ENTRYPOINT, network_mode="none", remove=True
        )
    except docker.errors.DockerException as e:
        said = str(getattr(e, "explanation", None) or e)
        raise _failure(host.hostname, "cannot run a container", said) from None


def _failure(hostname: str, what: str, said: str) -> ClusterError:
    finding = diagnose(said)
    if finding is not None:
        return NestedEngineError(hostname, finding.missing, finding.evidence)
    return ClusterError(f"{hostname} {what}: {said.strip()}")
