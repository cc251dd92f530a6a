"""The sweep's fidelity guard: a VM's rate error from its ticks, real seconds and jitter."""

from __future__ import annotations

import math

import pytest
from msgspec.structs import replace

from analysis.metrics.sweep import VmRow
from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment
from orchestrator.fidelity import (
    TAIL,
    fit_error,
    guard,
    highest_time_scale,
    judge_probe,
    trial_fidelity,
    worst_error,
)
from vm_node.rundir import FaultRecord

# one-minute trials of VMs at rates 1-6, ten times faster than real time
CELL = Experiment(name="c", rate_range=(1, 6), event_range=10, duration=60, time_scale=10)
MS = 1e-3


def test_the_fit_error_is_the_slopes_standard_error_relative_to_the_rate() -> None:
    # 60 ticks over 6 real seconds, ticks spread by 0.5 ms: 0.5 ms * sqrt(12 / 60) / 6 s
    assert fit_error(1.0, 60, 10, 0.5 * MS) == pytest.approx(0.5e-3 * math.sqrt(0.2) / 6)
    assert fit_error(1.0, 60, 20, 0.5 * MS) == pytest.approx(2 * fit_error(1.0, 60, 10, 0.5 * MS))
    assert fit_error(4.0, 60, 10, 0.5 * MS) == pytest.approx(fit_error(1.0, 60, 10, 0.5 * MS) / 2)


def test_the_slowest_vm_of_a_cell_decides_its_worst_error() -> None:
    assert worst_error(CELL, 0.5 * MS) == pytest.approx(TAIL * fit_error(1.0, 60, 10, 0.5 * MS))
    listed = replace(CELL, rate_range=None, rates=(2.0, 5.0, 3.0))
    assert worst_error(listed, 0.5 * MS) == pytest.approx(TAIL * fit_error(2.0, 60, 10, 0.5 * MS))


def test_at_the_highest_time_scale_the_worst_vm_just_meets_the_tolerance() -> None:
    top = highest_time_scale(CELL, 0.5 * MS, 1e-4)
    assert worst_error(replace(CELL, time_scale=top), 0.5 * MS) == pytest.approx(1e-4)
    assert highest_time_scale(CELL, 0.0, 1e-4) == math.inf


def test_the_guard_passes_a_slow_enough_sweep_and_names_where_it_would_stop() -> None:
    found = guard([replace(CELL, time_scale=2)], 0.5 * MS, 1e-4, force=False, source="test")
    assert "time scale 2" in found and "holds up to time scale 6.71" in found


def test_the_guard_refuses_a_sweep_whose_worst_vm_would_stray_unless_forced() -> None:
    cells = [replace(CELL, name="slow", time_scale=2), replace(CELL, name="fast", time_scale=100)]
    with pytest.raises(ConfigError, match="worst VM of fast at time scale 100"):
        guard(cells, 0.5 * MS, 1e-4, force=False, source="test")
    assert guard(cells, 0.5 * MS, 1e-4, force=True, source="test").endswith("beyond, forced")


def row(rate_error: float, tick_jitter: float) -> VmRow:
    return VmRow(
        cell="c", trial=1, vm=0, vms=3, event_range=10, rate=1.0, slowest_over_fastest=0.5,
        ticks=60, rate_error=rate_error, tick_jitter=tick_jitter, receive_share=0.2,
        predicted_receive_share=0.2, arrival_rate=0.2, load=0.2, queue_growth=0.0,
        predicted_queue_growth=0.0, queue_grows=False, predicted_queue_grows=False,
    )  # fmt: skip


def test_a_probe_vm_beyond_the_tolerance_refuses_the_sweep() -> None:
    slow = [replace(CELL, time_scale=1)]
    with pytest.raises(ConfigError, match="1 of 2 VMs beyond"):
        judge_probe(slow, [row(2e-5, 0.1 * MS), row(-3e-4, 0.1 * MS)], 1e-4, force=False)


def test_the_jitter_a_probe_measures_predicts_the_whole_sweep() -> None:
    rows = [row(1e-5, 0.4 * MS), row(-2e-5, 0.5 * MS), row(0.0, 3.0 * MS)]  # median 0.5 ms
    assert "tick jitter 0.50 ms" in judge_probe([replace(CELL, time_scale=2)], rows, 1e-4, False)
    with pytest.raises(ConfigError, match=r"probe: tick jitter 0\.50 ms"):
        judge_probe([CELL], rows, 1e-4, force=False)  # time scale 10: beyond 6.71


def test_a_probe_with_no_completed_trial_refuses_unless_forced() -> None:
    with pytest.raises(ConfigError, match="no probe trial completed"):
        judge_probe([CELL], [], 1e-4, force=False)
    assert "forced" in judge_probe([CELL], [], 1e-4, force=True)


def test_a_trial_s_fidelity_is_its_worst_vm_against_the_tolerance() -> None:
    stops = {
        "0": {"rate_configured": 2.0, "rate_achieved": 2.0001},  # 0.005 %
        "1": {"rate_configured": 4.0, "rate_achieved": 3.9992},  # 0.02 %
        "2": None,  # never stopped: no rate
        "3": {"rate_configured": 1.0, "rate_achieved": None},  # never ticked
    }
    fidelity = trial_fidelity(stops, tolerance=1e-4)
    assert (fidelity.vm, fidelity.measured) == (1, 2)
    assert fidelity.worst_error == pytest.approx(2e-4)
    assert not fidelity.held and fidelity.to_dict()["held"] is False
    warning = fidelity.warning(vms=4, time_scale=10)
    assert "vm1 ran 0.0200% off" in warning and "tolerance 0.0100%" in warning
    assert trial_fidelity(stops, tolerance=1e-3).held
    assert trial_fidelity({}).held  # nothing measured: nothing lost


def test_a_paused_vm_is_not_judged_by_the_late_ticks_its_pause_left_it() -> None:
    stops = {
        "0": {"rate_configured": 2.0, "rate_achieved": 2.0001},  # 0.005 %
        "1": {"rate_configured": 4.0, "rate_achieved": 3.6},  # caught up after a pause
    }
    pause = FaultRecord("pause", at=5, duration=3, targets=(1,))
    kill = FaultRecord("kill", at=5, duration=3, targets=(0,))
    assert not trial_fidelity(stops, 1e-4, [kill]).held  # only a pause excuses a VM
    fidelity = trial_fidelity(stops, 1e-4, [pause, kill])
    assert fidelity.held and (fidelity.vm, fidelity.measured) == (0, 1)
    assert list(fidelity.to_dict()["paused"]) == [1]
