"""The orchestrator's errors: one base, a few kinds that carry what went wrong.

Exit codes: 0 ok, 1 a trial failed (or a bug), 2 bad usage or config (nothing started).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ClocklabError(Exception):
    """Base of every error clocklab reports to its user (exit code 1)."""

    exit_code = EXIT_FAILED


class ConfigError(ClocklabError):
    """A bad experiment file or flag: names the field; nothing was started (exit 2)."""

    exit_code = EXIT_USAGE

    def __init__(self, field: str, problem: str, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}")
        self.field = field
        self.source = source


class CommandError(ClocklabError):
    """A CLI clocklab drives (`docker compose`, `docker stack`, pip) failed."""

    def __init__(self, command: list[str], returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"`{' '.join(command)}` failed with exit code {returncode}:\n{tail}")
        self.returncode = returncode
        self.stderr = stderr


class NoFreeSubnet(ClocklabError):
    """Every /24 of the pool clocklab takes networks' subnets from is in use."""

    def __init__(self, pool: str) -> None:
        super().__init__(f"every /24 of {pool} is in use by a Docker network here")
        self.pool = pool


class TrialError(ClocklabError):
    """A trial that started but did not complete."""


class RunDirBusy(ClocklabError):
    """Another clocklab command is running this trial into the same directory."""

    exit_code = EXIT_USAGE

    def __init__(self, run_dir: Path, holder: str) -> None:
        self.run_dir, self.holder = run_dir, holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(
            f"{run_dir} is being written by {who}, running the same trial: "
            "wait for it to end, or give this run another --out"
        )


class BackendUnavailable(ClocklabError):
    """The chosen backend cannot run here (no engine, no Compose v2, ...)."""

    exit_code = EXIT_USAGE


class ImageError(ClocklabError):
    """The VM image could not be found or built; the message says what to do."""


class ImageMissing(ImageError):
    """Swarm nodes lack the VM image: the message says which, and how to ship it."""

    def __init__(self, image: str, image_id: str, nodes: list[str], hint: str) -> None:
        super().__init__(
            f"the VM image {image} ({image_id.removeprefix('sha256:')[:12]}) is not on "
            f"node {', '.join(nodes)}; an image of that name built elsewhere is a different "
            f"image. {hint}"
        )
        self.nodes = nodes


class UnexpectedError(ClocklabError):
    """A bug: an error clocklab did not expect, whose traceback was written to a file."""

    def __init__(self, error: BaseException, traceback_file: Path) -> None:
        super().__init__(
            f"unexpected {type(error).__name__}: {error} (the traceback is in "
            f"{traceback_file}; `clocklab --debug` prints it)"
        )
        self.error = error
        self.traceback_file = traceback_file


class Interrupted(ClocklabError):
    """Ctrl-C or SIGTERM: the trial was torn down, its partial logs kept."""
