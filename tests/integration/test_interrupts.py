"""Ctrl-C, SIGTERM or SIGHUP at any phase of a container trial: nothing is left
behind, every log line kept is complete, the manifest says `interrupted`, and the
checker never calls the partial logs valid.

Each signal is sent once the trial has written proof of its phase (ticking.py),
not after a guessed delay."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from session import labelled
from ticking import wait_for_phase

from vm_node.rundir import Outcome, RunDir

pytestmark = pytest.mark.docker

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


@pytest.mark.parametrize(
    ("sig", "phase"),
    [
        (signal.SIGINT, "planned"),  # the manifest is written: the stack is about to start
        (signal.SIGTERM, "started"),  # containers running, the start barrier
        (signal.SIGHUP, "ticking"),
        (signal.SIGINT, "ending"),  # byes, stop lines, collection
    ],
)
def test_a_signal_at_any_phase_leaves_nothing_behind_and_logs_never_valid(
    docker_client: Any, vm_image: str, tmp_path: Path, sig: signal.Signals, phase: str
) -> None:
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "docker"]
    command += ["--experiment", "variation", "--duration", "60", "--time-scale", "20"]
    proc = subprocess.Popen(
        [*command, "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    run_dir = RunDir(tmp_path / "variation" / "trial-1")
    try:
        wait_for_phase(proc, run_dir.path, phase)
    finally:
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    assert labelled(docker_client) == []

    manifest = run_dir.read_manifest()
    if proc.returncode == 0:  # the trial finished before the signal could stop it
        assert manifest.outcome is Outcome.COMPLETED
    else:
        assert proc.returncode == 1, stderr.decode()
        assert manifest.outcome is Outcome.INTERRUPTED
    for _, _, path in run_dir.log_files():
        raw = path.read_bytes()
        assert not raw or raw.endswith(b"\n")
        for line in raw.splitlines():
            orjson.loads(line)  # every line complete JSON

    check = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "check", str(run_dir.path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        assert check.returncode == EXIT_VALID, check.stdout
    elif not run_dir.log_files():  # stopped before any VM wrote a line: no run to check
        assert check.returncode == EXIT_USAGE, check.stderr
    else:  # partial logs: never valid
        assert check.returncode in (EXIT_UNKNOWN, EXIT_INVALID), check.stdout
        assert "interrupted" in check.stdout
