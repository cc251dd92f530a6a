"""Small statistics, computed here so that analysis needs numpy only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.columns import Floats, Ints

PERMUTATIONS = 10_000


@dataclass(frozen=True, slots=True)
class Correlation:
    """Spearman's rank correlation with a two-sided permutation p-value."""

    rho: float
    p: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.rho):
            return f"n/a (n={self.n})"
        return f"ρ = {self.rho:+.2f} ({p_value(self.p)}, n = {self.n})"


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def ranks(values: Floats) -> Floats:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    result = np.empty(len(values), dtype=np.float64)
    result[order] = np.repeat(average, ends - starts)
    return result


def spearman(x: Floats, y: Floats, seed: int = 0) -> Correlation:
    """Rank correlation of x and y, ignoring pairs with a nan."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3:
        return Correlation(float("nan"), float("nan"), n)
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if scale == 0:
        return Correlation(float("nan"), float("nan"), n)
    rho = float((rx * ry).sum()) / scale
    rounds = max(100, min(PERMUTATIONS, 20_000_000 // n))  # bounded memory for large n
    shuffled = np.random.default_rng(seed).permuted(np.tile(ry, (rounds, 1)), axis=1)
    null = shuffled @ rx / scale
    p = (int(np.count_nonzero(np.abs(null) >= abs(rho) - 1e-12)) + 1) / (rounds + 1)
    return Correlation(rho, p, n)


def slope(x: Floats, y: Floats) -> float:
    """Least-squares slope of y against x (nan with fewer than two distinct x)."""
    if len(x) < 2:
        return float("nan")
    dx = x - x.mean()
    denominator = float((dx * dx).sum())
    if denominator == 0:
        return float("nan")
    return float((dx * (y - y.mean())).sum()) / denominator


def residual_spread(x: Floats, y: Floats) -> float:
    """Standard deviation of y about its least-squares line in x (nan with fewer than three
    points or one distinct x)."""
    b = slope(x, y)
    if len(x) < 3 or not np.isfinite(b):
        return float("nan")
    residual = (y - y.mean()) - b * (x - x.mean())
    return float(np.sqrt((residual * residual).sum() / (len(x) - 2)))


def percentile(values: Floats, q: float) -> float:
    """np.percentile's default (linear) to the last bit, from a partial sort: np.percentile
    imports numpy.ma on first use, a start-up cost every `clocklab check` would pay."""
    n = len(values)
    if not n or np.isnan(values).any():
        return float("nan")
    at = (n - 1) * (q / 100)
    low = min(math.floor(at), n - 1)
    high = min(low + 1, n - 1)
    part = np.partition(values, (low, high))
    a, b = float(part[low]), float(part[high])
    weight = at - low
    if weight >= 0.5:  # as numpy interpolates, from the nearer end
        return b - (b - a) * (1 - weight)
    return a + (b - a) * weight


def mean(values: Floats) -> float:
    return float(values.mean()) if len(values) else float("nan")


def maximum(values: Floats) -> float:
    return float(values.max()) if len(values) else float("nan")


@dataclass(frozen=True, slots=True)
class Difference:
    """Mean of b minus mean of a, with a two-sided permutation p-value."""

    a_mean: float
    b_mean: float
    p: float

    @property
    def delta(self) -> float:
        return self.b_mean - self.a_mean

    @property
    def relative(self) -> float:
        return self.delta / abs(self.a_mean) if self.a_mean else float("nan")


def difference(a: Floats, b: Floats, seed: int = 0) -> Difference:
    """Is b's mean different from a's? Shuffles the labels to find out."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return Difference(mean(a), mean(b), float("nan"))
    pooled = np.concatenate([a, b])
    observed = abs(b.mean() - a.mean())
    rounds = max(100, min(PERMUTATIONS, 20_000_000 // len(pooled)))
    shuffled = np.random.default_rng(seed).permuted(np.tile(pooled, (rounds, 1)), axis=1)
    null = np.abs(shuffled[:, len(a) :].mean(axis=1) - shuffled[:, : len(a)].mean(axis=1))
    p = (int(np.count_nonzero(null >= observed - 1e-12)) + 1) / (rounds + 1)
    return Difference(float(a.mean()), float(b.mean()), p)


@dataclass(frozen=True, slots=True)
class Shift:
    """Two-sample Kolmogorov-Smirnov: the largest gap between two empirical distributions,
    with a permutation p-value."""

    statistic: float  # D, in [0, 1]
    p: float
    n_a: int
    n_b: int

    def __str__(self) -> str:
        if math.isnan(self.p):
            return f"n/a (n = {self.n_a} and {self.n_b})"
        return f"D = {self.statistic:.2f} ({p_value(self.p)}, n = {self.n_a} and {self.n_b})"


def kolmogorov_smirnov(a: Floats, b: Floats, seed: int = 0) -> Shift:
    """Do a and b come from different distributions? Shuffles the labels to find out."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return Shift(float("nan"), float("nan"), len(a), len(b))
    pooled = np.concatenate([a, b])
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    ends_of_ties = np.r_[values[1:] != values[:-1], True]  # where both step functions are read
    # Walking up the pooled values, an a moves F_a - F_b up by 1/n_a, a b down by 1/n_b.
    steps = np.r_[np.full(len(a), 1 / len(a)), np.full(len(b), -1 / len(b))]
    observed = float(np.abs(np.cumsum(steps[order])[ends_of_ties]).max())
    rounds = max(100, min(PERMUTATIONS, 20_000_000 // len(pooled)))
    shuffled = np.random.default_rng(seed).permuted(np.tile(steps, (rounds, 1)), axis=1)
    null = np.abs(np.cumsum(shuffled, axis=1)[:, ends_of_ties]).max(axis=1)
    p = (int(np.count_nonzero(null >= observed - 1e-12)) + 1) / (rounds + 1)
    return Shift(observed, p, len(a), len(b))


@dataclass(frozen=True, slots=True)
class PairedShift:
    """A paired permutation test: the mean of the differences a - b over pairs, with a
    p-value from swapping a and b within whole groups of pairs at random."""

    mean_difference: float
    p: float
    pairs: int
    groups: int

    def __str__(self) -> str:
        if math.isnan(self.p):
            return f"n/a ({self.pairs} pairs in {self.groups} groups)"
        return f"Δ = {self.mean_difference:+.3f} ({p_value(self.p)}, {self.pairs} pairs)"


def paired_permutation(a: Floats, b: Floats, groups: Ints, seed: int = 0) -> PairedShift:
    """Is a - b centred on zero? `groups[i]` names the group pair i belongs to; under the null
    a and b are exchangeable group by group, so each round flips the sign of a whole group's
    differences. Pairs with a nan are left out."""
    difference = a - b
    known = ~np.isnan(difference)
    difference = difference[known]
    _, group = np.unique(groups[known], return_inverse=True)
    count = int(group.max()) + 1 if len(group) else 0
    if count < 2:
        return PairedShift(mean(difference), float("nan"), len(difference), count)
    sums = np.bincount(group, weights=difference, minlength=count)
    observed = abs(float(sums.sum())) / len(difference)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(PERMUTATIONS, count))
    null = np.abs(signs @ sums) / len(difference)
    p = (int(np.count_nonzero(null >= observed - 1e-12)) + 1) / (PERMUTATIONS + 1)
    return PairedShift(float(difference.mean()), p, len(difference), count)
