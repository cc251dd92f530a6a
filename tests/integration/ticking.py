"""Waiting, with a deadline, for a trial started as a process to tick."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def wait_until_ticking(proc: subprocess.Popen[bytes], run_dir: Path, timeout: float = 60) -> None:
    """Until vm0 of the trial in `run_dir` has logged a tick; fails if `proc` ends first."""
    log = run_dir / "logs" / "vm0.jsonl"
    deadline = time.monotonic() + timeout
    while not (log.exists() and b'"tick"' in log.read_bytes()):
        assert proc.poll() is None, f"the trial ended (exit {proc.returncode}) before ticking"
        assert time.monotonic() < deadline, f"the trial never started ticking in {timeout} s"
        time.sleep(0.05)
