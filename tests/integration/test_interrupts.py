"""Ctrl-C, SIGTERM or SIGHUP at any phase of a container trial: nothing is left
behind, every log line kept is complete, the manifest says `interrupted`, and the
checker never calls the partial logs valid.

Each signal is sent once the trial has written proof of its phase (ticking.py),
not after a guessed delay. A signal that came after its phase had ended (the
VMs' lines up to that moment tell) tested nothing: the trial runs again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from session import labelled
from ticking import wait_for_phase

from vm_node.rundir import Outcome, RunDir

pytestmark = pytest.mark.docker

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
ATTEMPTS = 3  # trials run until the signal comes within the phase it is meant for


def phase_hit(run_dir: RunDir, signalled_at: float) -> str:
    """The phase the trial was in as the signal came (its VMs' lines up to that moment
    tell), or `done` where the trial completed before the signal could stop it."""
    if run_dir.read_manifest().outcome is Outcome.COMPLETED:
        return "done"
    lines = [
        line
        for _, _, path in run_dir.log_files()
        for line in map(orjson.loads, path.read_bytes().splitlines())
        if line["timestamp"] <= signalled_at
    ]
    if any(line["event"] == "stop" for line in lines):
        return "ending"
    if any("tick" in line for line in lines):
        return "ticking"
    if any(line["event"] == "start" for line in lines):
        return "started"
    return "planned"


def interrupt(
    out: Path, sig: signal.Signals, phase: str, backend: str = "docker"
) -> tuple[int, bytes, str]:
    """A trial signalled once it has reached `phase`: its exit code, its stderr, and the
    phase the signal hit."""
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", backend]
    command += ["--experiment", "variation", "--duration", "60", "--time-scale", "20"]
    proc = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    run_dir = RunDir(out / "variation" / "trial-1")
    try:
        wait_for_phase(proc, run_dir.path, phase)
    finally:
        signalled_at = time.time()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr, phase_hit(run_dir, signalled_at)


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
    hits = []
    for attempt in range(1, ATTEMPTS + 1):
        out = tmp_path / f"attempt-{attempt}"
        returncode, stderr, hit = interrupt(out, sig, phase)
        assert labelled(docker_client) == []
        hits.append(hit)
        if hit == phase:
            break
    else:
        pytest.fail(f"the signal never came while the trial was {phase!r}: it hit {hits}")

    run_dir = RunDir(out / "variation" / "trial-1")
    assert returncode == 1, stderr.decode()
    assert run_dir.read_manifest().outcome is Outcome.INTERRUPTED
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
    if not run_dir.log_files():  # stopped before any VM wrote a line: no run to check
        assert check.returncode == EXIT_USAGE, check.stderr
    else:  # partial logs: never valid
        assert check.returncode in (EXIT_UNKNOWN, EXIT_INVALID), check.stdout
        assert "interrupted" in check.stdout
