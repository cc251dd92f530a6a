"""What every benchmark is given: quick or full, a scratch directory, the Docker side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.containers import Docker


@dataclass(frozen=True, slots=True)
class Context:
    quick: bool
    work: Path  # scratch space: experiment files, run directories, temporary logs
    docker: Docker | None
    docker_missing: str = ""  # why there is no Docker side, when there is none

    @property
    def backends(self) -> tuple[str, ...]:
        return ("local", "docker") if self.docker else ("local",)
