"""The machines `clocklab cluster join` is given: where each engine is, and what it says it is.

A machine is named as `ssh://user@host[:port]` (reached through the `ssh`
binary, so the user's ssh config, keys and known_hosts apply) or as an
existing Docker context (ssh, TLS or plain tcp). Each is checked before
anything changes: its engine answers and is recent enough, its CPU runs the
VM image, and its swarm state is one that join can use.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.cluster.errors import ClusterError
from orchestrator.engine import Endpoint, client_for, resolve_endpoint
from orchestrator.errors import ConfigError

MIN_API_VERSION = (1, 41)  # Docker Engine 20.10: swarm jobs and the stack options clocklab uses
ENGINE_API_TIMEOUT = 300  # seconds per call to a machine's engine: an image load over ssh
SSH_TIMEOUT = 10.0  # seconds for `ssh -G` to print its configuration
# `docker info` reports the kernel's name of the CPU; images carry Go's
MACHINE_TO_IMAGE_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One machine as the user named it, and the endpoint of its engine."""

    given: str
    endpoint: Endpoint

    @property
    def context(self) -> str | None:
        """The Docker context the user named, if the machine was named by one."""
        return self.endpoint.context


def parse_target(given: str, environ: Mapping[str, str]) -> Target:
    """`ssh://user@host[:port]`, or the name of an existing Docker context."""
    if "://" not in given:
        try:
            return Target(given, resolve_endpoint(given, environ))
        except ConfigError:
            raise ClusterError(
                f"{given!r} is neither ssh://USER@HOST[:PORT] nor a Docker context "
                "(see `docker context ls`)"
            ) from None
    url = urllib.parse.urlsplit(given)
    if url.scheme != "ssh":
        raise ClusterError(
            f"{given}: join takes ssh://USER@HOST[:PORT]; for {url.scheme}:// make a context "
            f"first (`docker context create NAME --docker host={given},ca=...,cert=...,key=...`) "
            "and join it by name"
        )
    try:
        url.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        raise ClusterError(f"{given}: the port must be a number") from None
    if not url.hostname or url.path not in ("", "/") or url.query or url.password:
        raise ClusterError(f"{given}: give it as ssh://USER@HOST[:PORT], with nothing after it")
    return Target(given, Endpoint(given.rstrip("/"), chosen_by=given))


@dataclass(frozen=True, slots=True)
class Machine:
    """A target whose engine answered, and what it said about itself."""

    target: Target
    hostname: str
    architecture: str  # as images name it: amd64, arm64, ...
    version: str
    api_version: str
    swarm: Mapping[str, Any]  # `docker info`'s Swarm section
    client: Any

    @property
    def swarm_state(self) -> str:
        return str(self.swarm.get("LocalNodeState") or "inactive")

    @property
    def is_manager(self) -> bool:
        return bool(self.swarm.get("ControlAvailable"))

    @property
    def node_id(self) -> str:
        return str(self.swarm.get("NodeID") or "")


def probe(target: Target) -> Machine:
    """Ask `target`'s engine what it is; ClusterError naming the machine where none answers."""
    import docker.errors

    try:
        client = client_for(target.endpoint, ENGINE_API_TIMEOUT)
        info = client.info()
        version = client.version()
    except docker.errors.DockerException as e:
        hint = (
            f"; check that `ssh {_ssh_destination(target.endpoint.host)} docker version` works "
            "without a prompt"
            if target.endpoint.is_ssh
            else ""
        )
        raise ClusterError(f"{target.given}: no Docker engine answers ({e}){hint}") from None
    machine = str(info.get("Architecture") or "")
    return Machine(
        target=target,
        hostname=str(info.get("Name") or ""),
        architecture=MACHINE_TO_IMAGE_ARCH.get(machine, machine),
        version=str(version.get("Version") or "?"),
        api_version=str(version.get("ApiVersion") or "0.0"),
        swarm=info.get("Swarm") or {},
        client=client,
    )


def check(machine: Machine, image_architecture: str) -> None:
    """Refuse a machine whose engine is too old or whose CPU cannot run the VM image."""
    name = f"{machine.hostname} ({machine.target.given})"
    if _version_tuple(machine.api_version) < MIN_API_VERSION:
        wanted = ".".join(map(str, MIN_API_VERSION))
        raise ClusterError(
            f"{name} runs Docker {machine.version} (API {machine.api_version}); the swarm "
            f"backend needs API {wanted} (Docker 20.10) or newer: upgrade its engine"
        )
    if machine.architecture != image_architecture:
        raise ClusterError(
            f"{name} is {machine.architecture} and the VM image is {image_architecture}: "
            "its containers would not start there; join machines of one architecture"
        )
    if machine.swarm_state not in ("active", "inactive"):
        raise ClusterError(
            f"{name} is {machine.swarm_state} in a swarm (`docker info` says so): let it "
            "finish joining, or `docker swarm leave --force` on it, then join again"
        )


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def advertise_address(endpoint: Endpoint) -> str | None:
    """The address the machine is reached by, for the swarm to advertise; None for a local
    socket (the engine then chooses)."""
    if endpoint.host.startswith(("unix://", "npipe://")):
        return None
    url = urllib.parse.urlsplit(endpoint.host)
    name = url.hostname or ""
    if endpoint.is_ssh:
        name = _ssh_hostname(_ssh_destination(endpoint.host)) or name
    try:
        return socket.gethostbyname(name)
    except OSError as e:
        raise ClusterError(f"{endpoint.host}: cannot resolve {name} here ({e})") from None


def _ssh_destination(host: str) -> str:
    """`user@host` of ssh://user@host[:port], as the `ssh` binary takes it."""
    url = urllib.parse.urlsplit(host)
    return f"{url.username}@{url.hostname}" if url.username else str(url.hostname)


def _ssh_hostname(destination: str) -> str | None:
    """The host name ssh connects to for `destination`, after its config's aliases."""
    try:
        result = subprocess.run(
            ["ssh", "-G", destination],
            capture_output=True,
            text=True,
            timeout=SSH_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname" and value:
            return value
    return None
