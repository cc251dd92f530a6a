"""Ctrl-C or SIGTERM at any moment of a container trial: nothing left, logs intact."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from session import labelled

pytestmark = pytest.mark.docker


@pytest.mark.parametrize(
    ("sig", "after"),
    [
        (signal.SIGINT, 0.3),  # loading, checking the image
        (signal.SIGTERM, 0.9),  # compose up
        (signal.SIGINT, 1.6),  # containers starting, the barrier
        (signal.SIGTERM, 3.0),  # ticking
        (signal.SIGINT, 5.2),  # the trial's end: byes, stop lines, collection
    ],
)
def test_a_signal_at_any_moment_leaves_nothing_behind_and_valid_logs(
    docker_client: Any, vm_image: str, tmp_path: Path, sig: signal.Signals, after: float
) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker"]
    command += ["--experiment", "variation", "--duration", "60", "--time-scale", "20"]
    proc = subprocess.Popen(
        [*command, "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(after)
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode in (0, 1)  # 0 only if the trial finished before the signal
    assert labelled(docker_client) == []
    run_dir = tmp_path / "variation" / "trial-1"
    if (run_dir / "manifest.json").exists():
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["outcome"] == ("completed" if proc.returncode == 0 else "interrupted")
    for path in run_dir.glob("logs/*.jsonl"):
        raw = path.read_bytes()
        assert not raw or raw.endswith(b"\n")
        for line in raw.splitlines():
            orjson.loads(line)  # every line complete JSON
