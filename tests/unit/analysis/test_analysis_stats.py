"""Rank correlation, permutation tests and slopes, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.metrics.stats import (
    difference,
    percentile,
    ranks,
    residual_spread,
    slope,
    spearman,
)


def floats(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_tied_values_share_their_average_rank() -> None:
    assert ranks(floats(10, 30, 20, 30)).tolist() == [1.0, 3.5, 2.0, 3.5]


def test_a_perfectly_falling_relation_has_rho_minus_one_and_a_small_p() -> None:
    c = spearman(floats(*range(10)), floats(*range(10, 0, -1)))
    assert c.rho == pytest.approx(-1.0)
    assert c.p < 0.001 and c.n == 10


def test_rho_with_ties_matches_the_pearson_correlation_of_ranks() -> None:
    c = spearman(floats(1, 2, 3, 4), floats(1, 1, 2, 2))
    assert c.rho == pytest.approx(4 / (2 * math.sqrt(5)))


def test_unrelated_values_give_a_large_p() -> None:
    rng = np.random.default_rng(3)
    assert spearman(rng.random(30), rng.random(30)).p > 0.05


def test_pairs_with_a_missing_value_are_left_out_and_too_few_give_nan() -> None:
    c = spearman(floats(1, 2, np.nan, 4), floats(2, 1, 5, np.nan))
    assert c.n == 2 and math.isnan(c.rho)


def test_a_constant_series_has_no_correlation() -> None:
    assert math.isnan(spearman(floats(1, 2, 3), floats(5, 5, 5)).rho)


def test_two_clearly_separated_samples_differ_significantly() -> None:
    d = difference(floats(10, 11, 12, 13, 14, 15), floats(1, 2, 3, 4, 5, 6))
    assert (d.a_mean, d.b_mean, d.delta) == (12.5, 3.5, -9.0)
    assert d.relative == pytest.approx(-0.72)
    assert d.p < 0.01


def test_slope_is_the_least_squares_fit() -> None:
    assert slope(floats(0, 1, 2, 3), floats(1, 3, 5, 7)) == pytest.approx(2.0)
    assert math.isnan(slope(floats(1, 1), floats(1, 2)))


def test_residual_spread_is_the_deviation_about_the_fitted_line() -> None:
    assert residual_spread(floats(0, 1, 2, 3), floats(1, 3, 5, 7)) == 0.0  # on the line
    # residuals +1, -1, -1, +1 about y = 2x + 1 (the fit's slope stays 2): sqrt(4 / (4 - 2))
    assert residual_spread(floats(0, 1, 2, 3), floats(2, 2, 4, 8)) == pytest.approx(math.sqrt(2))
    assert math.isnan(residual_spread(floats(0, 1), floats(0, 1)))  # two points fit any line


@pytest.mark.parametrize("q", [0, 5, 33.3, 50, 95, 99.9, 100])
def test_percentile_is_numpys_default_to_the_last_bit(q: float) -> None:
    rng = np.random.default_rng(7)
    for values in (rng.normal(size=1001), rng.integers(0, 4, 37).astype(float), floats(3.0)):
        assert percentile(values, q) == float(np.percentile(values, q))
    assert math.isnan(percentile(floats(1, float("nan"), 2), q))
    assert math.isnan(percentile(floats(), q))
