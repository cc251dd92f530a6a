"""Where a VM's log goes: the file, stdout or both, each line whole even under SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import orjson
from vmpeer import free_port, wait_for

from vm_node.vocabulary import LogLine


def alone(log_dir: Path, **settings: object) -> dict[str, str]:
    """The environment of a VM with no peers (it starts at once)."""
    base: dict[str, object] = {"vm": 0, "vms": 1, "run": "unit-stream", "host": "127.0.0.1"}
    base |= {"port": free_port(), "log_dir": log_dir} | settings
    return os.environ | {f"CLOCKLAB_{k.upper()}": str(v) for k, v in base.items()}


def test_with_log_stream_stdout_every_line_goes_to_stdout_and_no_file(tmp_path: Path) -> None:
    env = alone(tmp_path, log_stream="stdout", rate=50, duration=0.5)
    done = subprocess.run(
        [sys.executable, "-m", "vm_node"], env=env, capture_output=True, timeout=60, check=True
    )
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["event"] for r in lines[:2]] == ["start", "ready"]
    assert lines[-1]["event"] == "stop" and lines[-1]["ticks"] == 25
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert not list(tmp_path.glob("*.jsonl"))


def test_with_log_stream_file_and_stdout_both_carry_every_line(tmp_path: Path) -> None:
    env = alone(tmp_path, log_stream="file+stdout", rate=50, duration=0.5)
    done = subprocess.run(
        [sys.executable, "-m", "vm_node"], env=env, capture_output=True, timeout=60, check=True
    )
    in_file = (tmp_path / "vm0.jsonl").read_bytes()
    assert in_file == done.stdout
    lines = [orjson.loads(line) for line in in_file.splitlines()]
    assert lines[-1]["event"] == "stop" and lines[-1]["ticks"] == 25


def test_every_line_is_one_typed_log_line_of_the_vocabulary(tmp_path: Path) -> None:
    env = alone(tmp_path, rate=50, duration=0.5)
    subprocess.run([sys.executable, "-m", "vm_node"], env=env, timeout=60, check=True)
    decoder = msgspec.json.Decoder(LogLine)
    lines = [decoder.decode(line) for line in (tmp_path / "vm0.jsonl").read_bytes().splitlines()]
    assert {type(line).__name__ for line in lines} == {
        "StartLine",
        "ReadyLine",
        "InternalLine",
        "StopLine",
    }


def test_a_vm_killed_mid_burst_leaves_only_whole_lines(tmp_path: Path) -> None:
    # Ticks due far faster than it can run: it logs back to back until killed.
    env = alone(tmp_path, rate=1_000_000, duration=600)
    proc = subprocess.Popen([sys.executable, "-m", "vm_node"], env=env)
    try:
        wait_for(tmp_path / "vm0.jsonl", "internal", count=2000, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    raw = (tmp_path / "vm0.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert len(lines) >= 2000
    assert [r["seq"] for r in lines] == list(range(len(lines)))
