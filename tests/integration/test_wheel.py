"""The built wheel is a working install: from any directory it finds its shipped
experiments, runs local trials into ./runs, checks them and reports on them."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--backend", "local", "--duration", "10", "--time-scale", "10")

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def clocklab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `clocklab` script of a fresh venv that has only the wheel (and its dependencies)."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp), str(ROOT)], tmp)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp.glob("clocklab-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    pip = [str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    installed = run([*pip, f"{wheel}[lab]"], tmp)
    assert installed.returncode == 0, installed.stderr
    return tmp / "venv" / "bin" / "clocklab"


def test_the_installed_wheel_runs_checks_and_reports_a_trial_from_any_directory(
    clocklab: Path, tmp_path: Path
) -> None:
    up = run([str(clocklab), "up", *FAST], tmp_path)
    assert up.returncode == 0, up.stderr
    run_dir = tmp_path / "runs" / "original" / "trial-1"
    assert (run_dir / "manifest.json").is_file()
    check = run([str(clocklab), "check", str(run_dir)], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    report = run([str(clocklab), "report", "runs"], tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report.html").stat().st_size > 0


def test_the_installed_wheel_runs_every_trial_of_a_shipped_experiment(
    clocklab: Path, tmp_path: Path
) -> None:
    trials = run(
        [str(clocklab), "trials", "--experiment", "variation", "--trials", "2", *FAST], tmp_path
    )
    assert trials.returncode == 0, trials.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "variation").iterdir()) == [
        "trial-1",
        "trial-2",
    ]


def test_a_local_experiment_file_takes_precedence_over_the_shipped_one(
    clocklab: Path, tmp_path: Path
) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "original.yaml").write_text(
        "name: original\nvms: 2\nrates: [2, 3]\nduration: 10\ntime_scale: 10\n"
    )
    up = run([str(clocklab), "up", "--backend", "local"], tmp_path)
    assert up.returncode == 0, up.stderr
    logs = tmp_path / "runs" / "original" / "trial-1" / "logs"
    assert sorted(p.name for p in logs.glob("*.jsonl")) == ["vm0.jsonl", "vm1.jsonl"]
