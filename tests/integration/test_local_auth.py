"""Local trials sign their frames too: the key in a private file, off with --no-auth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from analysis.check import Verdict, check_trial
from analysis.load import load_trial


def up(out: Path, *more: str) -> Path:
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--backend", "local"]
    command += ["--duration", "10", "--time-scale", "10", "--out", str(out), *more]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out / "original" / "trial-1"


def start_configs(run_dir: Path) -> list[dict[str, object]]:
    return [
        orjson.loads(line)["config"]
        for path in sorted((run_dir / "logs").glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
        if b'"event":"start"' in line
    ]


def test_a_local_trial_signs_with_a_key_that_is_gone_afterwards(tmp_path: Path) -> None:
    run_dir = up(tmp_path)
    configs = start_configs(run_dir)
    assert len(configs) == 3 and all(c["auth"] is True for c in configs)
    key_file = Path(str(configs[0]["auth_key_file"]))
    assert not key_file.exists() and not key_file.is_relative_to(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["auth"] is True and manifest["environment"]["auth"] is True
    assert check_trial(load_trial(run_dir)).verdict == Verdict.VALID


@pytest.mark.parametrize("how", [("--no-auth",), ("--experiment", "AUTH_OFF")])
def test_no_auth_or_auth_false_turns_signing_off(tmp_path: Path, how: tuple[str, ...]) -> None:
    if "AUTH_OFF" in how:
        path = tmp_path / "off.yaml"
        path.write_text("name: original\nauth: false\n")
        how = ("--experiment", str(path))
    run_dir = up(tmp_path / "runs", *how)
    assert all(c["auth"] is False for c in start_configs(run_dir))
    assert json.loads((run_dir / "manifest.json").read_text())["config"]["auth"] is False
