"""The notebook's conclusions, judged on simulated experiments where the truth is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.load.runs import load_trial
from analysis.metrics.claims import (
    SHARE_TOLERANCE,
    Support,
    agreement_p,
    judge,
    model_claims,
)
from analysis.metrics.summaries import ExperimentSummary, summarize_all
from analysis.metrics.traces import traces
from analysis.metrics.trial import trial_metrics
from vm_node.sim import SyntheticRun, write_run

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


def test_one_experiment_alone_cannot_test_the_variation_claims(
    summaries: list[ExperimentSummary],
) -> None:
    claims = [c for c in judge(summaries[:1]) if "variation" in c.statement]
    assert len(claims) == 3
    assert all(c.support is Support.UNTESTED for c in claims)


def test_slower_vms_spend_their_ticks_receiving_in_both_experiments(
    summaries: list[ExperimentSummary],
) -> None:
    for c in judge(summaries):
        if c.statement == "Slower VMs spend their ticks receiving":
            assert c.support is Support.SUPPORTED, c.evidence
            assert "receive share of ticks: ρ = -" in c.evidence


@pytest.mark.parametrize(
    ("start", "measure"),
    [
        ("The variation (rates 4-5, event range 5) makes smaller jumps", "mean lag"),
        ("The variation sends more and synchronises more", "receives per simulated second"),
        ("The variation balances the queues", "spread of mean queue length"),
    ],
)
def test_each_finding_of_the_variation_holds_on_runs_that_follow_the_rules(
    summaries: list[ExperimentSummary], start: str, measure: str
) -> None:
    (claim,) = [c for c in judge(summaries) if c.statement.startswith(start)]
    assert claim.scope == "variation vs original"
    assert claim.support is Support.SUPPORTED, claim.evidence
    assert measure in claim.evidence


def test_the_variation_claims_turn_against_an_experiment_that_does_the_opposite(
    summaries: list[ExperimentSummary],
) -> None:
    original, variation = summaries
    swapped = [replace(variation, name="original"), replace(original, name="variation")]
    for c in judge(swapped):
        if "variation" in c.statement:
            assert c.support is Support.CONTRADICTED, c.evidence


def test_the_model_predicts_receive_shares_and_growing_queues_of_runs_that_follow_it(
    summaries: list[ExperimentSummary],
) -> None:
    share, growth = model_claims(summaries)
    assert share.support is Support.SUPPORTED, share.evidence
    assert "over 30 VM-trials" in share.evidence
    error = float(share.evidence.split("= ")[1].split()[0])
    assert error <= SHARE_TOLERANCE
    assert growth.support is Support.SUPPORTED, growth.evidence
    assert "right on 30 of 30" in growth.evidence  # (1, 3, 6) and (2, 5, 1) starve the slowest


def test_the_model_fails_on_runs_whose_configuration_misstates_the_event_range(
    tmp_path: Path,
) -> None:
    metrics = []
    for t, rates in enumerate(ORIGINAL_RATES, 1):
        spec = SyntheticRun(rates=rates, seed=t, time_scale=20.0, trial=t, event_range=3)
        run = write_run(spec, tmp_path)
        for log in (run / "logs").glob("*.jsonl"):  # the logs now claim event range 30
            log.write_bytes(log.read_bytes().replace(b'"event_range":3,', b'"event_range":30,'))
        trial = load_trial(run)
        metrics.append(trial_metrics(trial, traces(trial)))
    share, _ = model_claims(summarize_all(metrics))
    assert share.support is not Support.SUPPORTED, share.evidence


def test_agreement_with_chance_needs_both_classes_on_both_sides() -> None:
    predicted = np.array([True, True, False, False, False, False, False, False])
    assert agreement_p(predicted, predicted.copy()) < 0.05
    assert agreement_p(predicted, predicted[::-1].copy()) > 0.05
    assert np.isnan(agreement_p(predicted, np.zeros(8, dtype=bool)))


def test_a_model_claim_over_a_sweep_counts_its_cells_rather_than_listing_them(
    summaries: list[ExperimentSummary],
) -> None:
    cells = [replace(summaries[k % 2], name=f"cell-{k}") for k in range(7)]
    share, growth = model_claims(cells)
    assert share.scope == growth.scope == "cell-0, cell-1, cell-2, cell-3 and 3 more"
    assert model_claims(summaries)[0].scope == "original, variation"
