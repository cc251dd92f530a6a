"""The orchestrator's errors: one base, a few kinds that carry what went wrong."""

from __future__ import annotations


class ClocklabError(Exception):
    """Base of every error clocklab reports to its user (exit code 1)."""

    exit_code = 1


class ConfigError(ClocklabError):
    """A bad experiment file or flag: names the field; nothing was started (exit 2)."""

    exit_code = 2

    def __init__(self, field: str, problem: str, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}")
        self.field = field
        self.source = source


class CommandError(ClocklabError):
    """A CLI clocklab drives (`docker compose`, `docker stack`) failed."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"`{' '.join(args)}` failed with exit code {returncode}:\n{tail}")
        self.args_run = args
        self.returncode = returncode
        self.stderr = stderr


class TrialError(ClocklabError):
    """A trial that started but did not complete."""


class BackendUnavailable(ClocklabError):
    """The chosen backend cannot run here (no engine, no Compose v2, ...)."""

    exit_code = 2


class Interrupted(ClocklabError):
    """Ctrl-C or SIGTERM: the trial was torn down, its partial logs kept."""
