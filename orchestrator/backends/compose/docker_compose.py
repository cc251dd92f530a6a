"""The one wrapper around the `docker compose` CLI (Compose v2)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.engine import Endpoint
from orchestrator.errors import BackendUnavailable, CommandError
from orchestrator.subprocesses import run_command

INSTALL_HINT = (
    "clocklab needs Compose v2 (`docker compose`). Install Docker's compose plugin, "
    "or run `make compose` (or scripts/install-compose.sh) to install it as a CLI plugin."
)


class Compose:
    def __init__(self, endpoint: Endpoint, docker: str = "docker") -> None:
        self._docker = docker
        self._env = endpoint.cli_env(os.environ)
        self._version: str | None = None

    def version(self) -> str:
        """Compose's version; raises BackendUnavailable where v2 is missing. Asked once,
        because every trial's backend wants to know and each `docker compose` run is a
        process of its own."""
        if self._version is None:
            self._version = self._ask_version()
        return self._version

    def _ask_version(self) -> str:
        try:
            out = self._run(["version", "--short"], timeout=20)
        except CommandError as e:
            raise BackendUnavailable(f"{INSTALL_HINT} ({e})") from None
        version = out.strip().lstrip("v")
        major = version.split(".")[0]
        if not major.isdigit() or int(major) < 2:
            raise BackendUnavailable(f"Compose {version!r} is not v2. {INSTALL_HINT}")
        return version

    def up(self, file: Path, project: str) -> None:
        self._run(["-f", str(file), "-p", project, "up", "--detach", "--no-build"])

    def down(self, file: Path, project: str, timeout: int = 5) -> None:
        args = ["-f", str(file), "-p", project, "down", "--volumes", "--remove-orphans"]
        self._run([*args, "--timeout", str(timeout)])

    def _run(self, args: list[str], timeout: float = 300) -> str:
        return run_command([self._docker, "compose", *args], timeout, env=self._env)
