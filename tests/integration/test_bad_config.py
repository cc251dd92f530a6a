"""Bad experiment files and flags: exit 2, the field named, nothing started, nothing left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main

GOOD = "name: bad\nvms: 3\nrate_range: [1, 6]\nduration: 10\ntime_scale: 20\n"

FILES = [
    ("vms: 3\n", "name"),
    ("name: Bad.Name\n", "name"),
    (GOOD + "vms: 0\n", "vms"),
    (GOOD.replace("vms: 3", "vms: '3'"), "vms"),
    (GOOD.replace("[1, 6]", "[6, 1]"), "rate_range"),
    (GOOD.replace("rate_range: [1, 6]", "rates: [1, 2]"), "rates"),
    (GOOD + "event_range: -1\n", "event_range"),
    (GOOD.replace("duration: 10", "duration: soon"), "duration"),
    (GOOD.replace("time_scale: 20", "time_scale: 0"), "time_scale"),
    (GOOD + "colour: blue\n", "colour"),
    (GOOD + "network: {loss: 1.5}\n", "network.loss"),
    (GOOD + "network: {delay: {dist: normal, mean: 1}}\n", "network.delay.dist"),
    (GOOD + "network: {jitter: 3}\n", "network.jitter"),
    (GOOD + "faults: [{kind: explode, at: 1, duration: 1}]\n", "faults[0].kind"),
    (GOOD + "faults: [{kind: kill, at: 1, duration: 1, target: 3}]\n", "faults[0].target"),
    (GOOD + "faults: [{kind: kill, at: 8, duration: 5, target: 1}]\n", "faults[0].duration"),
    (GOOD + "faults: [{kind: pause, at: -1, duration: 1, target: 0}]\n", "faults[0].at"),
    (
        GOOD + "faults: [{kind: partition, at: 1, duration: 1, groups: [[0, 1], [1, 2]]}]\n",
        "faults[0].groups",
    ),
    (
        GOOD + "faults: [{kind: loss, at: 1, duration: 1, probability: 2}]\n",
        "faults[0].probability",
    ),
    (
        GOOD
        + "faults: [{kind: delay, at: 1, duration: 1, delay: {dist: uniform, low: 2, high: 1}}]\n",
        "faults[0].delay.low",
    ),
    (
        GOOD
        + "faults: [{kind: kill, at: 1, duration: 4, target: 0},"
        + " {kind: pause, at: 2, duration: 1, target: 1}]\n",
        "faults[1].at",
    ),
    (
        GOOD + "faults: [{kind: kill, at: 1, duration: 1, target: 0, signal: 9}]\n",
        "faults[0].signal",
    ),
    ("name: bad\nvms: [3\n", "(file)"),
]

FLAGS = [
    (["--duration", "-5"], "--duration"),
    (["--time-scale", "0"], "--time-scale"),
    (["--vms", "0"], "--vms"),
    (["--trial", "0"], "--trial"),
    (["--backend", "mainframe"], "--backend"),
    (["--experiment", "no-such-experiment"], "experiment"),
    (["--experiment", "nowhere/at/all.yaml"], "experiment"),
]


def containers_of_experiment(name: str) -> set[str] | None:
    """Ids of the containers of experiment `name`, or None where no engine answers."""
    try:
        result = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=clocklab.experiment={name}"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(result.stdout.split()) if result.returncode == 0 else None


def run_cli(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(["up", *args, "--out", str(out)])
    except SystemExit as e:  # argparse's own usage errors
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("text", "field"), FILES)
def test_a_bad_experiment_file_exits_2_naming_the_field_and_starts_nothing(
    text: str,
    field: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, err = run_cli(
        ["--experiment", str(path), "--backend", "local"], tmp_path / "runs", capsys
    )
    assert code == 2
    assert field in err.replace("\n", "")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("flags", "name"), FLAGS)
def test_a_bad_flag_exits_2_naming_it(
    flags: list[str], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        [*flags, "--backend", "local"] if "--backend" not in flags else flags,
        tmp_path / "runs",
        capsys,
    )
    assert code == 2
    assert name in err
    assert not (tmp_path / "runs").exists()


def test_the_local_backend_refuses_a_partition_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "part.yaml"
    path.write_text(
        GOOD + "faults: [{kind: partition, at: 1, duration: 1, groups: [[0], [1, 2]]}]\n"
    )
    code, err = run_cli(
        ["--experiment", str(path), "--backend", "local"], tmp_path / "runs", capsys
    )
    assert code == 2
    assert "local backend cannot partition" in err.replace("\n", " ")
    assert not (tmp_path / "runs").exists()


def test_bad_input_leaves_no_container_behind(tmp_path: Path) -> None:
    """The default backend (docker where one answers) with a bad file: no container appears."""
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD + "vms: -1\n")
    command = [sys.executable, "-m", "orchestrator.cli", "up", "--experiment", str(path)]
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "runs")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "vms" in result.stderr
    assert not (tmp_path / "runs").exists()
    assert containers_of_experiment("bad") in (None, set())
