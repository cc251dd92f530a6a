"""The Docker engine clocklab talks to: which one, the labels on what it creates, cleanup.

The engine is chosen as the docker CLI chooses it: `--context NAME` first,
then DOCKER_HOST, then DOCKER_CONTEXT, then the current context in
~/.docker/config.json, then the default socket. The SDK client and every CLI
clocklab runs (`docker compose`, `docker stack`) use that one endpoint, with the
context's TLS material where it has some; an ssh:// endpoint is reached through
the `ssh` binary, so the user's ssh config, keys and known_hosts apply
(ssh_transport.py).

Everything a trial creates carries `clocklab.run` (the trial) and
`clocklab.session` (the process, test session or benchmark that started it),
so a cleanup removes only its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import BackendUnavailable, ConfigError

DEFAULT_HOST = "unix:///var/run/docker.sock"
SESSION_ENV = "CLOCKLAB_SESSION"
LABEL_RUN = "clocklab.run"
LABEL_SESSION = "clocklab.session"
LABEL_EXPERIMENT = "clocklab.experiment"
LABEL_TRIAL = "clocklab.trial"
LABEL_VM = "clocklab.vm"


@dataclass(frozen=True, slots=True)
class Tls:
    """The TLS material of an endpoint: the files the docker CLI would use."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify: bool = True

    @classmethod
    def from_folder(cls, folder: Path, verify: bool) -> Tls | None:
        """The material in `folder` (ca.pem, cert.pem, key.pem); None where it holds none."""
        found = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
        present = {name: path for name, path in found.items() if path.is_file()}
        if not present:
            return None
        return cls(present.get("ca"), present.get("cert"), present.get("key"), verify)

    def config(self) -> Any:
        """docker-py's TLSConfig for this material."""
        from docker.tls import TLSConfig

        client_cert = (str(self.cert), str(self.key)) if self.cert and self.key else None
        ca = str(self.ca) if self.ca else None
        return TLSConfig(client_cert=client_cert, ca_cert=ca, verify=self.verify)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the engine listens, how it is secured, and what chose it (for messages)."""

    host: str
    context: str | None = None  # a named context other than `default`
    chosen_by: str = "the default socket"
    tls: Tls | None = None

    @property
    def is_ssh(self) -> bool:
        return self.host.startswith("ssh://")

    def cli_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` for a docker CLI child, pinned to this endpoint."""
        env = {k: v for k, v in environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        if self.context is not None:
            env["DOCKER_CONTEXT"] = self.context
        else:
            env["DOCKER_HOST"] = self.host
        return env


def resolve_endpoint(
    context: str | None, environ: Mapping[str, str], config_dir: Path | None = None
) -> Endpoint:
    """The endpoint the docker CLI would use, given its `--context` flag and environment."""
    config_dir = config_dir or Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if context:
        return _named(context, "--context", config_dir, environ)
    if environ.get("DOCKER_HOST"):
        return Endpoint(environ["DOCKER_HOST"], chosen_by="DOCKER_HOST", tls=_env_tls(environ))
    if environ.get("DOCKER_CONTEXT"):
        return _named(environ["DOCKER_CONTEXT"], "DOCKER_CONTEXT", config_dir, environ)
    current = _current_context(config_dir)
    if current:
        return _named(current, f"{config_dir / 'config.json'}", config_dir, environ)
    return Endpoint(DEFAULT_HOST)


def _current_context(config_dir: Path) -> str | None:
    try:
        config = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = config.get("currentContext") if isinstance(config, dict) else None
    return str(name) if name else None


def _named(name: str, chosen_by: str, config_dir: Path, environ: Mapping[str, str]) -> Endpoint:
    if name == "default":  # the built-in context: DOCKER_HOST or the socket
        return Endpoint(environ.get("DOCKER_HOST") or DEFAULT_HOST, chosen_by=chosen_by)
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        docker = json.loads(meta.read_text(encoding="utf-8"))["Endpoints"]["docker"]
        host = docker["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            "context",
            f"no Docker context named {name!r} (from {chosen_by}; see `docker context ls`)",
        ) from None
    tls_folder = config_dir / "contexts" / "tls" / digest / "docker"
    tls = Tls.from_folder(tls_folder, verify=not docker.get("SkipTLSVerify", False))
    return Endpoint(str(host), context=name, chosen_by=f"context {name} ({chosen_by})", tls=tls)


def _env_tls(environ: Mapping[str, str]) -> Tls | None:
    """DOCKER_TLS_VERIFY's material from DOCKER_CERT_PATH, as the docker CLI reads it."""
    if not environ.get("DOCKER_TLS_VERIFY"):
        return None
    folder = Path(environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    return Tls.from_folder(folder, verify=True)


def session_id(environ: Mapping[str, str]) -> str:
    """CLOCKLAB_SESSION when set (tests, benchmarks), else a fresh id for this process."""
    return environ.get(SESSION_ENV) or uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class Engine:
    """A connected Docker engine, and the session whose objects clocklab may remove."""

    client: Any
    endpoint: Endpoint
    session: str

    def labels(self, run: str, experiment: str, trial: int) -> dict[str, str]:
        return {
            LABEL_RUN: run,
            LABEL_SESSION: self.session,
            LABEL_EXPERIMENT: experiment,
            LABEL_TRIAL: str(trial),
        }


def client_options(endpoint: Endpoint) -> dict[str, Any]:
    """docker.DockerClient's arguments for `endpoint`: over the `ssh` binary for ssh:// (not
    paramiko, which reads neither the ssh config nor every key type), with the endpoint's TLS
    material where it has some."""
    if endpoint.is_ssh:
        return {"base_url": endpoint.host, "use_ssh_client": True}
    return {"base_url": endpoint.host, "tls": endpoint.tls.config() if endpoint.tls else False}


def client_for(endpoint: Endpoint, timeout: int = 30) -> Any:
    """A Docker SDK client of `endpoint` (it asks the engine for its API version)."""
    import docker

    client = docker.DockerClient(timeout=timeout, **client_options(endpoint))
    if endpoint.is_ssh:
        from orchestrator.ssh_transport import use_ssh_adapter

        use_ssh_adapter(client, endpoint.host, timeout)
    return client


def connect(endpoint: Endpoint, session: str, timeout: int = 30) -> Engine:
    """The engine at `endpoint`, answering; BackendUnavailable where it does not."""
    from docker.errors import DockerException

    try:
        client = client_for(endpoint, timeout)
        client.ping()
    except DockerException as e:
        raise BackendUnavailable(
            f"no Docker engine answers at {endpoint.host} (chosen by {endpoint.chosen_by}): {e}"
        ) from None
    return Engine(client, endpoint, session)


def connect_from_env(context: str | None = None) -> Engine:
    """The engine the docker CLI would use here, in this process's session."""
    return connect(resolve_endpoint(context, os.environ), session_id(os.environ))


def remove_labelled(client: Any, label: str) -> list[str]:
    """Remove the services, containers, networks, volumes and secrets carrying `label` (KEY
    or KEY=VALUE).

    Returns what was removed, as "container NAME" and the like.
    """
    from docker.errors import APIError, NotFound

    removed: list[str] = []
    swarm_manager = bool(client.info().get("Swarm", {}).get("ControlAvailable"))
    if swarm_manager:
        for service in client.services.list(filters={"label": label}):
            with contextlib.suppress(NotFound):  # removed meanwhile by its own command
                service.remove()
                removed.append(f"service {service.name}")
    # The low-level list: the high-level one inspects each container and fails
    # on one that goes away meanwhile (a swarm task, a trial tearing down).
    for container in client.api.containers(all=True, filters={"label": label}):
        try:
            client.api.remove_container(container["Id"], force=True)
            removed.append(f"container {container['Names'][0].lstrip('/')}")
        except NotFound:
            pass
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
            removed.append(f"network {network.name}")
        except (NotFound, APIError):  # a swarm network goes once its tasks are gone
            pass
    for volume in client.volumes.list(filters={"label": label}):  # a swarm trial's log volume
        try:
            volume.remove(force=True)
            removed.append(f"volume {volume.name}")
        except (NotFound, APIError):  # gone meanwhile, or still mounted by a container
            pass
    if swarm_manager:  # a crashed swarm trial's key (its services are gone now)
        for secret in client.secrets.list(filters={"label": label}):
            with contextlib.suppress(NotFound, APIError):
                secret.remove()
                removed.append(f"secret {secret.name}")
    return removed
