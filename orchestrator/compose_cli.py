"""The one wrapper around the `docker compose` CLI (Compose v2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.errors import BackendUnavailable, ClocklabError

INSTALL_HINT = (
    "clocklab needs Compose v2 (`docker compose`). Install Docker's compose plugin, "
    "or run `make compose` (or scripts/install-compose.sh) to install it as a CLI plugin."
)


class ComposeError(ClocklabError):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"`{' '.join(args)}` failed with exit code {returncode}:\n{tail}")
        self.args_run = args
        self.returncode = returncode
        self.stderr = stderr


class Compose:
    def __init__(self, docker: str = "docker") -> None:
        self._docker = docker

    def version(self) -> str:
        """Compose's version; raises BackendUnavailable where v2 is missing."""
        try:
            out = self._run(["version", "--short"], timeout=20)
        except (ComposeError, FileNotFoundError) as e:
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
        command = [self._docker, "compose", *args]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise ComposeError(command, -1, f"timed out after {timeout} s") from e
        if result.returncode != 0:
            raise ComposeError(command, result.returncode, result.stderr)
        return result.stdout
