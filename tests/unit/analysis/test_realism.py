"""Real against simulated: per-VM figures of two sets of trials, and where they differ."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from test_analysis_cli import clocklab

from analysis.load.runs import load_trials
from analysis.metrics.claims import Support
from analysis.metrics.realism import compare
from analysis.metrics.stats import kolmogorov_smirnov
from analysis.metrics.traces import traces
from analysis.metrics.trial import TrialMetrics, trial_metrics
from vm_node.sim import SyntheticRun, write_run

TRIALS = 12


def trials(root: Path, seed_base: int = 0, **changes: Any) -> Path:
    """TRIALS trials of `original`'s shape, rates drawn per trial as its plan draws them."""
    for t in range(1, TRIALS + 1):
        rng = random.Random(t)
        rates = tuple(float(rng.randint(1, 6)) for _ in range(3))
        spec = SyntheticRun(
            rates=rates, duration=60.0, time_scale=20.0, seed=seed_base + t, trial=t,
            experiment="original", **changes,
        )  # fmt: skip
        write_run(spec, root)
    return root / "original"


def measured(path: Path) -> list[TrialMetrics]:
    return [trial_metrics(t, traces(t)) for t in load_trials([path])]


def test_ks_finds_a_shifted_distribution_and_not_a_resampled_one() -> None:
    rng = np.random.default_rng(1)
    same = kolmogorov_smirnov(rng.normal(0, 1, 40), rng.normal(0, 1, 40))
    shifted = kolmogorov_smirnov(rng.normal(0, 1, 40), rng.normal(1.5, 1, 40))
    assert same.p > 0.05 and shifted.p < 0.001
    assert 0 <= same.statistic < shifted.statistic <= 1
    assert str(kolmogorov_smirnov(np.ones(1), np.ones(5))).startswith("n/a")


def test_ks_statistic_is_the_largest_gap_between_the_two_step_functions() -> None:
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0])
    assert kolmogorov_smirnov(a, b).statistic == pytest.approx(0.5)
    assert kolmogorov_smirnov(a, a).statistic == 0


def test_two_runs_of_one_model_agree_on_every_figure(tmp_path: Path) -> None:
    realism = compare(measured(trials(tmp_path / "a")), measured(trials(tmp_path / "b", 100)))
    assert realism.network_shows == []
    claim = realism.claim()
    assert claim.support is Support.SUPPORTED
    assert "no figure differs" in claim.evidence
    assert f"{TRIALS} trial(s) of the same experiment and number in both" in claim.evidence


def test_a_network_that_is_not_the_model_shows_where_it_differs(tmp_path: Path) -> None:
    # Half of all sends refused, as an unreachable peer refuses them: fewer receives.
    lossy = measured(trials(tmp_path / "real", failure_rate=0.5))
    realism = compare(lossy, measured(trials(tmp_path / "sim")))
    assert "receive share" in realism.network_shows
    claim = realism.claim()
    assert claim.support is Support.CONTRADICTED
    assert claim.evidence.startswith("the network shows in ")


def test_too_few_vm_trials_leave_the_claim_untested(tmp_path: Path) -> None:
    one = measured(trials(tmp_path / "a"))[:1]
    assert compare(one[:0], one).claim().support is Support.UNTESTED


def test_compare_prints_each_figure_and_names_where_the_network_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, sim = trials(tmp_path / "real", failure_rate=0.5), trials(tmp_path / "sim")
    assert clocklab("compare", str(real), str(sim)) == 0
    out = capsys.readouterr().out
    assert "receive share" in out and "contradicted: Real sockets" in out
    assert clocklab("compare", "--json", str(real), str(sim)) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert "receive share" in document["network_shows"]
    assert [f["figure"] for f in document["figures"]] == [
        "mean jump", "receive share", "queue growth (msg/s)",
    ]  # fmt: skip
    assert len(document["figures"][0]["real"]) == 3 * TRIALS
