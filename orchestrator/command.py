"""Runs one CLI command to completion, its failure a CommandError."""

from __future__ import annotations

import subprocess

from orchestrator.errors import CommandError


def run_command(command: list[str], timeout: float) -> str:
    """The command's stdout; CommandError with its stderr when it fails or times out."""
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        raise CommandError(command, -1, f"timed out after {timeout} s") from e
    if result.returncode != 0:
        raise CommandError(command, result.returncode, result.stderr)
    return result.stdout
