"""A small sweep on the local backend at high compression: trials, table, diagram, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest

from orchestrator.cli import main

SWEEP = """\
name: tinysweep
vms: 3
rate_range: [1, 6]
duration: 10
time_scale: 50
seed: 5
sweep:
  rate_range: [[1, 6], [4, 5]]
  event_range: [5]
  trials: 1
"""

pytestmark = pytest.mark.slow


def test_a_sweep_runs_every_cell_once_and_resumes_without_rerunning(tmp_path: Path) -> None:
    experiment = tmp_path / "tinysweep.yaml"
    experiment.write_text(SWEEP)
    out = tmp_path / "sweep"
    argv = ["sweep", str(experiment), "--out", str(out), "--concurrency", "2", "--force"]
    assert main(argv) == 0  # forced: a machine shared with other work may miss 0.01 %

    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["ran"], summary["skipped"], summary["failed"]) == (2, 0, [])
    assert summary["cells"] == ["tinysweep-r1-6-e5-n3", "tinysweep-r4-5-e5-n3"]
    with (out / "vms.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6  # 2 cells x 1 trial x 3 VMs
    assert {row["cell"] for row in rows} == set(summary["cells"])
    assert all(0 <= float(row["predicted_receive_share"]) <= 1 for row in rows)
    assert pl.read_parquet(out / "vms.parquet")["cell"].to_list() == [r["cell"] for r in rows]
    assert (out / "phase.png").read_bytes().startswith(b"\x89PNG")
    assert summary["vm_rate_errors"] == 6
    assert summary["probe"]["cell"] == "tinysweep-r1-6-e5-n3"  # the busiest cell
    assert len(summary["probe"]["rate_errors"]) == 2 * 3  # two trials at once, 3 VMs each
    assert 0 < summary["probe"]["tick_jitter"] < 0.1  # seconds
    assert all(float(row["tick_jitter"]) > 0 for row in rows)

    manifests = sorted(out.glob("trials/*/trial-1/manifest.json"))
    before = [m.stat().st_mtime_ns for m in manifests]
    assert main(argv) == 0
    again = json.loads((out / "sweep.json").read_text())
    assert (again["ran"], again["skipped"]) == (0, 2)
    assert [m.stat().st_mtime_ns for m in manifests] == before
    assert again["probe"] == summary["probe"]  # the first run's probe, kept


WIDE = """\
name: widesweep
vms: 3
rate_range: [1, 6]
duration: 10
time_scale: 50
seed: 7
sweep:
  rate_range: [[1, 6], [1, 4], [2, 6], [3, 6], [4, 5], [5, 6]]
  event_range: [3, 5, 8, 10, 20]
  trials: 1
"""


def test_a_wide_sweep_with_many_trials_at_once_finishes_in_one_run(tmp_path: Path) -> None:
    """30 cells, 8 at once: every trial makes and removes its key beside the others."""
    experiment = tmp_path / "widesweep.yaml"
    experiment.write_text(WIDE)
    out = tmp_path / "sweep"
    argv = ["sweep", str(experiment), "--out", str(out), "--concurrency", "8", "--force"]
    assert main(argv) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["ran"], summary["skipped"], summary["failed"]) == (30, 0, [])
    with (out / "trials.csv").open() as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 30 and {t["outcome"] for t in trials} == {"completed"}


def test_a_trial_that_fails_unexpectedly_is_named_and_only_it_runs_again(tmp_path: Path) -> None:
    experiment = tmp_path / "tinysweep.yaml"
    experiment.write_text(SWEEP)
    out = tmp_path / "sweep"
    blocker = out / "trials" / "tinysweep-r4-5-e5-n3" / "trial-1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the trial's directory goes: making it fails")
    argv = ["sweep", str(experiment), "--out", str(out), "--concurrency", "2", "--force"]
    assert main(argv) == 1

    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["ran"], summary["skipped"]) == (2, 0)
    (failure,) = summary["failed"]
    assert (failure["cell"], failure["trial"]) == ("tinysweep-r4-5-e5-n3", 1)
    assert failure["error"].startswith("unexpected ")
    assert "Traceback" in Path(failure["traceback"]).read_text()
    with (out / "trials.csv").open() as f:
        outcomes = {(t["cell"], t["outcome"], t["traceback"]) for t in csv.DictReader(f)}
    assert outcomes == {
        ("tinysweep-r1-6-e5-n3", "completed", ""),
        ("tinysweep-r4-5-e5-n3", "failed", failure["traceback"]),
    }

    done = out / "trials" / "tinysweep-r1-6-e5-n3" / "trial-1" / "manifest.json"
    before = done.stat().st_mtime_ns
    blocker.unlink()
    assert main(argv) == 0
    again = json.loads((out / "sweep.json").read_text())
    assert (again["ran"], again["skipped"], again["failed"]) == (1, 1, [])
    assert done.stat().st_mtime_ns == before


def test_a_sweep_whose_worst_vm_would_stray_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    experiment = tmp_path / "tinysweep.yaml"
    experiment.write_text(SWEEP)
    out = tmp_path / "sweep"
    argv = ["sweep", str(experiment), "--out", str(out), "--jitter", "0.01"]
    assert main(argv) == 2  # 10 ms of jitter over 0.2 real seconds: far beyond 0.01 %
    assert not out.exists()


def test_a_sweep_whose_probe_strays_beyond_the_tolerance_is_refused(tmp_path: Path) -> None:
    experiment = tmp_path / "tinysweep.yaml"
    experiment.write_text(SWEEP)
    out = tmp_path / "sweep"
    argv = ["sweep", str(experiment), "--out", str(out), "--rate-tolerance", "0", "--jitter", "0"]
    assert main(argv) == 2  # the guard trusts a jitter of 0, but no VM keeps its rate exactly
    assert (out / "probe" / "trials").is_dir()
    assert not (out / "trials").exists()


def test_a_probe_alone_measures_and_runs_no_trial(tmp_path: Path) -> None:
    experiment = tmp_path / "tinysweep.yaml"
    experiment.write_text(SWEEP)
    out = tmp_path / "sweep"
    argv = ["sweep", str(experiment), "--out", str(out), "--probe-only", "--concurrency", "1"]
    assert main([*argv, "--force"]) == 0
    assert len(list(out.glob("probe/trials/*/trial-1/manifest.json"))) == 1
    assert not (out / "trials").exists()
