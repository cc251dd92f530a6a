"""A sweep's per-VM table and phase diagram, from simulated trials whose answer is known."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

from analysis.load import load_trial
from analysis.metrics.queueing import critical_ratio
from analysis.metrics.sweep import scores, vm_rows
from analysis.report.plot_inputs import phase_diagram
from analysis.report.plots import plot_phase_diagram
from analysis.report.sweep_table import write_results
from vm_node.rundir import Outcome, RunDir
from vm_node.sim import SyntheticRun, write_run


def test_the_boundary_is_where_the_slow_vms_arrivals_match_their_rate() -> None:
    # E = 10, N = 3, p = 0.2. Two slow VMs at r, one fast at 1: saturated slow VMs never
    # send, so each receives 0.2 from the fast one, and grows iff r < 0.2.
    assert critical_ratio(10, 3, slow=2) == pytest.approx(0.2, abs=1e-9)
    # One slow VM at r among two fast: each fast one receives only from the other,
    # rho_f = 0.2 (1 - rho_f) = 1/6, so the slow one gets 2 * 5/6 * 0.2 = 1/3.
    assert critical_ratio(10, 3, slow=1) == pytest.approx(1 / 3, abs=1e-9)
    assert critical_ratio(10, 1, slow=1) == 0.0


def test_rows_put_each_vm_beside_its_prediction(tmp_path: Path) -> None:
    # Five simulated minutes: long enough that a queue growing by 0.2 a second shows on any seed.
    spec = SyntheticRun(rates=(1.0, 6.0, 1.0), seed=3, time_scale=50, duration=300.0)
    run = write_run(spec, tmp_path)
    rows = vm_rows(load_trial(run))
    assert [r.vm for r in rows] == [0, 1, 2]
    slow = rows[0]
    assert (slow.event_range, slow.vms, slow.slowest_over_fastest) == (10, 3, pytest.approx(1 / 6))
    assert slow.arrival_rate == pytest.approx(1.2)
    assert slow.predicted_queue_grows and slow.queue_grows  # the synthetic run obeys the rules
    assert slow.queue_growth > 0.1
    assert abs(slow.predicted_receive_share - slow.receive_share) < 0.1


def test_results_write_a_csv_row_per_vm_trial_and_a_phase_diagram(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    for t, (rates, event_range) in enumerate(
        [((1.0, 6.0, 1.0), 10), ((4.0, 5.0, 4.0), 5), ((2.0, 6.0, 3.0), 20)], 1
    ):
        spec = SyntheticRun(rates=rates, event_range=event_range, seed=t, trial=t, time_scale=50)
        write_run(spec, trials)
    result = write_results(trials, tmp_path)
    with (tmp_path / "vms.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 9 == result.vm_trials
    assert {row["event_range"] for row in table} == {"5", "10", "20"}
    frame = pl.read_parquet(tmp_path / "vms.parquet")
    assert frame.columns == list(table[0])
    assert frame.schema["event_range"] == pl.Int64 and frame.schema["queue_grows"] == pl.Boolean
    assert frame["vm"].to_list() == [int(row["vm"]) for row in table]
    assert frame["receive_share"].to_list() == [float(row["receive_share"]) for row in table]
    assert (tmp_path / "phase.png").read_bytes().startswith(b"\x89PNG")
    assert result.clear_right == result.clear  # every clear-cut queue called right here


def test_the_phase_diagram_colours_each_cell_by_the_share_of_growing_queues(
    tmp_path: Path,
) -> None:
    rows = []
    for t, rates in enumerate([(1.0, 6.0, 1.0), (5.0, 6.0, 5.0)], 1):
        run = write_run(SyntheticRun(rates=rates, seed=t, trial=t, time_scale=50), tmp_path)
        rows += vm_rows(load_trial(run))
    diagram = phase_diagram(rows)
    assert diagram.event_ranges == (10,)
    assert diagram.share[0, 1] == pytest.approx(2 / 3)  # ratio 1/6: both slow VMs grew
    assert diagram.share[0, 8] == 0.0  # ratio 5/6: none did
    assert np.isnan(diagram.share[0, 4])  # no trial there
    assert scores(rows).vm_trials == 6
    ax = Figure().add_subplot()
    plot_phase_diagram(ax, diagram)
    assert len(ax.get_lines()) == 2  # the model's two boundaries


def test_the_report_of_a_sweep_directory_is_one_page_of_scores_diagram_and_cells(
    tmp_path: Path,
) -> None:
    from analysis.report import write_report

    for t, rates in enumerate([(1.0, 6.0, 1.0), (4.0, 5.0, 4.0)], 1):
        write_run(SyntheticRun(rates=rates, seed=t, trial=t, time_scale=50), tmp_path / "trials")
    summary = {"experiment": "grid", "cells": ["synthetic"], "worst_rate_error": 1.2e-4,
               "vms_beyond_tolerance": 2, "vm_rate_errors": 6, "rate_tolerance": 1e-4}  # fmt: skip
    (tmp_path / "sweep.json").write_text(json.dumps(summary))
    assert write_report([tmp_path], tmp_path / "r.html") == []
    page = (tmp_path / "r.html").read_text()
    assert "clocklab sweep <code>grid</code>" in page
    assert page.count("data:image/png;base64,") == 2  # the phase diagram and the model fit
    assert '<td class="text">synthetic</td>' in page
    assert "<b>0.0120%</b>worst VM rate error" in page
    assert "<b>2/6</b>VMs beyond 0.0100% of their rate" in page


def test_a_sweep_with_no_completed_trial_writes_empty_tables_that_keep_their_columns(
    tmp_path: Path,
) -> None:
    run = RunDir(write_run(SyntheticRun(rates=(1.0, 6.0, 1.0)), tmp_path / "trials"))
    run.write_manifest(run.read_manifest().with_(outcome=Outcome.FAILED, error="a VM hung"))
    result = write_results(tmp_path / "trials", tmp_path)
    assert result.vm_trials == 0
    frame = pl.read_parquet(tmp_path / "vms.parquet")
    assert frame.height == 0 and frame.schema["rate"] == pl.Float64
    assert not (tmp_path / "phase.png").exists()
