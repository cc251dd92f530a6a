"""The one wrapper around `docker stack` and `docker service logs` (the swarm backend's CLI)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import BinaryIO

from orchestrator.engine import Endpoint
from orchestrator.errors import BackendUnavailable, CommandError
from orchestrator.subprocesses import run_command

# $0 is docker, $1 the service. The shell lets go of stdout, so that the pipe
# ends when the CLI does, and waits for the end of stdin to stop the CLI.
_FOLLOW = """
"$0" service logs --follow --raw "$1" &
exec >&-
cat >/dev/null
kill "$!" 2>/dev/null
"""


class StackCli:
    def __init__(self, endpoint: Endpoint, docker: str = "docker") -> None:
        self._docker = docker
        self._env = endpoint.cli_env(os.environ)

    def version(self) -> str:
        """The docker CLI's version; raises BackendUnavailable where there is no CLI."""
        try:
            return self._run(["version", "--format", "{{.Client.Version}}"], timeout=20).strip()
        except CommandError as e:
            raise BackendUnavailable(
                f"the swarm backend needs the docker CLI (`docker stack deploy`): {e}"
            ) from None

    def deploy(self, file: Path, stack: str) -> None:
        """Create the stack's network and services; returns once they exist (not yet running)."""
        args = ["stack", "deploy", "--compose-file", str(file)]
        # The image is referenced by id and present on the nodes: no registry to ask.
        args += ["--resolve-image", "never", *self._detach(), stack]
        self._run(args)

    def rm(self, stack: str) -> None:
        """Ask the swarm to remove the stack; returns before its containers and network are gone."""
        self._run(["stack", "rm", stack])

    def start_again(self, service: str, env: dict[str, str]) -> None:
        """A new task for `service` (restarts are off), with `env` added to its environment."""
        added = [arg for k, v in env.items() for arg in ("--env-add", f"{k}={v}")]
        self._run(["service", "update", "--force", "--detach", *added, service])

    def follow_logs(self, service: str, stderr: BinaryIO) -> subprocess.Popen[bytes]:
        """`docker service logs --follow --raw`: the service's stdout lines on the pipe.

        The service's stderr (and the CLI's own complaints) go to `stderr`.
        The CLI never ends by itself, not even once the service is removed, so
        it runs under a shell that stops it when its stdin closes: close
        `stdin` to stop following; if clocklab dies, the kernel closes it. Its
        own session keeps a Ctrl-C for clocklab from cutting the logs short.
        """
        return subprocess.Popen(
            ["sh", "-c", _FOLLOW, self._docker, service],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=self._env,
            start_new_session=True,
        )

    @functools.cached_property
    def _detach_flag(self) -> bool:
        # Clients from 26.0 have --detach (default true, for now); older ones reject it.
        return "--detach" in self._run(["stack", "deploy", "--help"], timeout=20)

    def _detach(self) -> list[str]:
        return ["--detach=true"] if self._detach_flag else []

    def _run(self, args: list[str], timeout: float = 120) -> str:
        return run_command([self._docker, *args], timeout, env=self._env)
