"""Clock offsets on a real local trial: measured on the node, and recovered from the logs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from analysis.offsets import offset_bounds
from orchestrator.backends.local import LocalBackend, free_port_block
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.skew import Skew
from orchestrator.trial import Trial

SKEW = 0.3  # seconds vm1's clock is ahead


@pytest.fixture(scope="module")
def skewed_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    experiment = Experiment(
        name="skewed", duration=30, time_scale=30, seed=4, skew=Skew(vms=((1, SKEW),))
    )
    out = tmp_path_factory.mktemp("runs")
    backends = partial(LocalBackend, base_port=free_port_block(3, 21100))
    result = Trial(plan_trial(experiment, 1), backends, out).run()
    assert result.ok, result.error
    return result.run_dir.path


def test_the_logs_bound_every_vm_pair_around_the_configured_skew(skewed_trial: Path) -> None:
    offsets = offset_bounds(skewed_trial)
    assert offsets.configured.tolist() == [0.0, SKEW, 0.0]
    assert offsets.vms.holds(offsets.configured_difference).all()
    assert offsets.vms.low[0, 1] > SKEW - 0.2  # the messages say vm1 is well ahead of vm0
    assert np.isfinite(offsets.vms.width).all()


def test_the_node_clock_is_measured_at_the_start_and_the_end(skewed_trial: Path) -> None:
    measured = load_trial(skewed_trial).manifest.node_offsets
    assert [m.phase for m in measured] == ["start", "end"]
    for m in measured:
        assert m.vms == (0, 1, 2)
        assert abs(m.offset) <= m.uncertainty + 1e-6  # one machine: one clock
        assert m.uncertainty < 0.05


def test_check_and_analyze_judge_a_skewed_trial_valid_without_skew_given(
    skewed_trial: Path,
) -> None:
    trial = load_trial(skewed_trial)
    assert check_trial(trial).verdict is Verdict.VALID
    too_strict = check_trial(trial, skew=0.0)
    assert too_strict.verdict is Verdict.INVALID
    assert any("more than --skew 0 s" in e.detail for e in too_strict.examples)
