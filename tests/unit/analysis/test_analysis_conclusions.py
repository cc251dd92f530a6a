"""The notebook's conclusions, judged on simulated experiments where the truth is known."""

from __future__ import annotations

import pytest

from analysis.load.runs import load_trial
from analysis.metrics.claims import Support, judge
from analysis.metrics.summaries import ExperimentSummary, summarize_all
from analysis.metrics.traces import traces
from analysis.metrics.trial import trial_metrics
from analysis.testing import SyntheticRun, write_run

ORIGINAL_RATES = [
    (1.0, 3.0, 6.0),
    (2.0, 5.0, 1.0),
    (4.0, 1.0, 6.0),
    (3.0, 6.0, 2.0),
    (5.0, 2.0, 4.0),
]
VARIATION_RATES = [
    (4.0, 5.0, 5.0),
    (5.0, 4.0, 4.0),
    (4.0, 4.0, 5.0),
    (5.0, 5.0, 4.0),
    (4.0, 5.0, 4.0),
]


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> list[ExperimentSummary]:
    root = tmp_path_factory.mktemp("runs")
    specs = [
        SyntheticRun(
            rates=r, duration=60.0, time_scale=20.0, seed=t, experiment="original", trial=t
        )
        for t, r in enumerate(ORIGINAL_RATES, 1)
    ] + [
        SyntheticRun(
            rates=r,
            duration=60.0,
            time_scale=20.0,
            event_range=5,
            seed=t,
            experiment="variation",
            trial=t,
        )
        for t, r in enumerate(VARIATION_RATES, 1)
    ]
    metrics = []
    for spec in specs:
        trial = load_trial(write_run(spec, root))
        metrics.append(trial_metrics(trial, traces(trial)))
    return summarize_all(metrics)


def test_experiments_are_summarised_in_the_order_they_appear(
    summaries: list[ExperimentSummary],
) -> None:
    original, variation = summaries
    assert (original.name, len(original.trials), original.rate_low, original.rate_high) == (
        "original",
        5,
        1.0,
        6.0,
    )
    assert (variation.name, variation.rate_low, variation.rate_high) == ("variation", 4.0, 5.0)
    assert original.internal_share + original.send_share + original.receive_share == pytest.approx(
        1.0
    )


def test_slower_vms_make_larger_jumps_in_the_original_experiment(
    summaries: list[ExperimentSummary],
) -> None:
    original = summaries[0]
    assert original.rate_vs_jump.rho < -0.5 and original.rate_vs_jump.p < 0.05


def test_each_claim_is_judged_on_each_experiment_and_the_variation_on_both(
    summaries: list[ExperimentSummary],
) -> None:
    claims = judge(summaries)
    verdicts = {(c.statement, c.scope): c.support for c in claims}
    assert verdicts[("Slower VMs make larger logical clock jumps", "original")] is Support.SUPPORTED
    assert verdicts[("Slower VMs build longer queues", "original")] is Support.SUPPORTED
    assert verdicts[("Fast VMs drift less", "original")] is Support.SUPPORTED
    variation = next(c for c in claims if c.scope == "variation vs original")
    assert variation.support in (Support.SUPPORTED, Support.PARTLY)
    assert "mean jump" in variation.evidence and "p " in variation.evidence


def test_one_experiment_alone_cannot_test_the_variation_claim(
    summaries: list[ExperimentSummary],
) -> None:
    (claim,) = [c for c in judge(summaries[:1]) if "variation" in c.statement]
    assert claim.support is Support.UNTESTED
