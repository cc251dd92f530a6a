"""Small numeric helpers shared by the benchmarks: percentiles and the rate fit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values: Sequence[float] | np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """p50, p99, max and mean of `values` times `scale` (NaN for an empty sample)."""
    a = np.asarray(values, dtype=np.float64) * scale
    if not len(a):
        nan = float("nan")
        return {"n": 0, "p50": nan, "p99": nan, "max": nan, "mean": nan}
    p50, p99 = np.percentile(a, [50, 99])
    return {
        "n": len(a),
        "p50": float(p50),
        "p99": float(p99),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


def fitted_rate(ticks: Sequence[int] | np.ndarray, times: Sequence[float] | np.ndarray) -> float:
    """Ticks per second: the inverse least-squares slope of tick times against tick index
    (the definition vm_node.ratefit uses)."""
    k = np.asarray(ticks, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if len(k) < 2:
        return float("nan")
    k = k - k[0]
    t = t - t[0]
    slope = np.polyfit(k, t, 1)[0]
    return float(1.0 / slope) if slope > 0 else float("nan")


def error_pct(achieved: float | None, configured: float) -> float:
    """(achieved / configured - 1) in percent; NaN when nothing was achieved."""
    if achieved is None:
        return float("nan")
    return (achieved / configured - 1.0) * 100.0


def worst(values: Sequence[float]) -> float:
    """The largest magnitude (NaN if any value is NaN or there is none)."""
    if not values or any(np.isnan(v) for v in values):
        return float("nan")
    return max(abs(v) for v in values)
