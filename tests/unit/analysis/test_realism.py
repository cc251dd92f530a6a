"""Real against simulated: per-VM figures of two sets of trials, and where they differ."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from test_analysis_cli import clocklab

from analysis.load.runs import load_trials
from analysis.metrics.claims import Support
from analysis.metrics.realism import (
    MIN_PAIRS,
    PAIRED,
    UNPAIRED,
    compare,
    compare_backends,
)
from analysis.metrics.stats import kolmogorov_smirnov, paired_permutation
from analysis.metrics.traces import traces
from analysis.metrics.trial import TrialMetrics, trial_metrics
from vm_node.rundir import RunDir
from vm_node.sim import SyntheticRun, write_run

TRIALS = 12


def trials(root: Path, seed_base: int = 0, count: int = TRIALS, **changes: Any) -> Path:
    """`count` trials of `original`'s shape, rates drawn per trial as its plan draws them."""
    for t in range(1, count + 1):
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


def test_a_paired_test_sees_a_small_shift_the_distributions_hide() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(0, 1, 60)
    a = b + 0.1 + rng.normal(0, 0.05, 60)
    trial = np.repeat(np.arange(20), 3)
    paired = paired_permutation(a, b, trial)
    assert paired.p < 0.001 and paired.mean_difference == pytest.approx(0.1, abs=0.02)
    assert kolmogorov_smirnov(a, b).p > 0.05
    assert paired.pairs == 60 and paired.groups == 20


def test_a_paired_test_of_identical_pairs_finds_nothing_and_needs_two_groups() -> None:
    values = np.array([1.0, 2.0, np.nan, 4.0])
    same = paired_permutation(values, values, np.array([0, 0, 1, 1]))
    assert same.p == 1.0 and same.mean_difference == 0 and same.pairs == 3
    one_group = paired_permutation(values + 1, values, np.zeros(4, dtype=np.int64))
    assert np.isnan(one_group.p) and str(one_group).startswith("n/a")


def test_two_runs_of_one_model_on_other_seeds_agree_by_their_distributions(
    tmp_path: Path,
) -> None:
    realism = compare(measured(trials(tmp_path / "a")), measured(trials(tmp_path / "b", 100)))
    assert realism.network_shows == []
    assert {f.method for f in realism.figures} == {UNPAIRED}
    claim = realism.claim()
    assert claim.support is Support.SUPPORTED
    assert "no figure differs" in claim.evidence
    assert "0 trial(s) of the same experiment, number, seed and rates" in claim.evidence


def test_trials_of_one_plan_are_compared_vm_by_vm(tmp_path: Path) -> None:
    lossy = measured(trials(tmp_path / "real", failure_rate=0.5))
    realism = compare(lossy, measured(trials(tmp_path / "sim")))
    assert realism.paired_trials == TRIALS
    assert {f.method for f in realism.figures} == {PAIRED}
    assert "receive share" in realism.network_shows
    evidence = realism.claim().evidence
    assert f"{TRIALS} trial(s) of the same experiment, number, seed and rates in both" in evidence
    assert "paired permutation Δ = -" in evidence  # refused sends: fewer receives than the model


@pytest.mark.parametrize(
    "change",
    [{"seed": None}, {"seed": 99}, {"trial": 99}, {"experiment": "other"}],
)
def test_trials_pair_only_on_the_same_experiment_number_and_seed(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    sim = measured(trials(tmp_path / "sim"))
    others = [dataclasses.replace(t, **change) for t in measured(trials(tmp_path / "real"))]
    assert compare(others, sim).paired_trials == 0
    assert compare(measured(trials(tmp_path / "real")), sim).paired_trials == TRIALS


def test_trials_with_other_rates_do_not_pair(tmp_path: Path) -> None:
    sim = measured(trials(tmp_path / "sim"))
    faster = [
        write_run(
            SyntheticRun(
                rates=(6.0, 6.0, 6.0), duration=60.0, time_scale=20.0, seed=t, trial=t,
                experiment="original",
            ),
            tmp_path / "real",
        )
        for t in range(1, 3)
    ]  # fmt: skip
    assert compare([m for path in faster for m in measured(path)], sim).paired_trials == 0


def relabel(root: Path, backend: str) -> Path:
    """Say in every manifest under `root` that its trial ran on `backend`."""
    for path in root.glob("*/trial-*"):
        rd = RunDir(path)
        rd.write_manifest(rd.read_manifest().with_(backend=backend))
    return root


def test_trials_of_a_real_backend_and_the_simulator_are_told_apart(tmp_path: Path) -> None:
    real = measured(relabel(trials(tmp_path / "real").parent, "local"))
    sim = measured(relabel(trials(tmp_path / "sim").parent, "sim"))
    realism = compare_backends(real + sim)
    assert realism is not None and (realism.real, realism.sim) == ("local", "sim")
    assert realism.trials == (TRIALS, TRIALS) and realism.paired_trials == TRIALS
    assert compare_backends(sim) is None and compare_backends(real) is None


def test_the_report_on_both_kinds_of_run_says_whether_real_sockets_behave_like_the_model(
    tmp_path: Path,
) -> None:
    from analysis.report.page import write_report

    real = trials(tmp_path / "runs" / "local", count=MIN_PAIRS, failure_rate=0.5).parent
    sim = trials(tmp_path / "runs" / "sim", count=MIN_PAIRS).parent
    write_report([relabel(real, "local"), relabel(sim, "sim")], tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Real sockets behave like the ideal model" in page
    assert re.search(r"the network shows in [^:]*receive share", page)
    assert f"{MIN_PAIRS} trial(s) of the same experiment, number, seed and rates" in page


def test_fewer_trials_of_one_plan_than_a_paired_test_needs_are_compared_as_distributions(
    tmp_path: Path,
) -> None:
    few = MIN_PAIRS - 1
    realism = compare(
        measured(trials(tmp_path / "real", count=few, failure_rate=0.5)),
        measured(trials(tmp_path / "sim", count=few)),
    )
    assert realism.paired_trials == few and not realism.paired
    assert {f.method for f in realism.figures} == {UNPAIRED}
    assert "in both: too few to pair" in realism.claim().evidence


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
    assert document["paired_trials"] == TRIALS
    assert {f["test"] for f in document["figures"]} == {"paired permutation"}
