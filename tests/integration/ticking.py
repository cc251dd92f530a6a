"""Waiting, with a deadline, for a trial started as a process to reach a phase.

Each phase is something the trial writes, never a guess of how long it takes:

- `planned`: the manifest exists (the trial is about to start its VMs);
- `started`: some VM logged `start` (its container or process runs);
- `ticking`: vm0 logged a tick;
- `ending`: some VM logged `stop`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from orchestrator.poll import poll


def _any_log_holds(run_dir: Path, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in run_dir.glob("logs/*.jsonl"))


PHASES: dict[str, Callable[[Path], bool]] = {
    "planned": lambda run_dir: (run_dir / "manifest.json").exists(),
    "started": lambda run_dir: _any_log_holds(run_dir, b'"event":"start"'),
    "ticking": lambda run_dir: b'"tick"' in _read(run_dir / "logs" / "vm0.jsonl"),
    "ending": lambda run_dir: _any_log_holds(run_dir, b'"event":"stop"'),
}


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def wait_for_phase(
    proc: subprocess.Popen[bytes], run_dir: Path, phase: str, timeout: float = 60
) -> None:
    """Until the trial in `run_dir` reaches `phase`; fails if `proc` ends first."""
    reached = PHASES[phase]

    def check() -> bool:
        if reached(run_dir):
            return True
        assert proc.poll() is None, f"the trial ended (exit {proc.returncode}) before {phase!r}"
        return False

    assert poll(check, timeout, interval=0.02), f"the trial never reached {phase!r} in {timeout} s"


def wait_until_ticking(proc: subprocess.Popen[bytes], run_dir: Path, timeout: float = 60) -> None:
    wait_for_phase(proc, run_dir, "ticking", timeout)
