"""Runs the CLIs clocklab drives (docker, pip, scripts): their failure a CommandError."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.errors import CommandError


def run_command(
    command: list[str],
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """The command's stdout; CommandError with its stderr when it fails or times out."""
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as e:
        raise CommandError(command, -1, f"timed out after {timeout} s") from e
    except OSError as e:
        raise CommandError(command, 127, str(e)) from e
    if result.returncode != 0:
        raise CommandError(command, result.returncode, result.stderr or result.stdout)
    return result.stdout


def stream_command(
    command: list[str],
    say: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Run `command`, handing each line of its output to `say`; CommandError when it fails."""
    lines: list[str] = []
    try:
        with subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip())
                say(line.rstrip())
    except OSError as e:
        raise CommandError(command, 127, str(e)) from e
    if proc.returncode != 0:
        raise CommandError(command, proc.returncode, "\n".join(lines))
