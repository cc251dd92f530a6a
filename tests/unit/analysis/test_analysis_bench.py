"""The benchmark hook measures a simulated run of the size asked for."""

from __future__ import annotations

from analysis.bench import run_benchmark


def test_run_benchmark_reports_speed_time_and_memory_for_the_lines_asked_for() -> None:
    result = run_benchmark(20_000)
    assert abs(result["lines"] - 20_000) < 100
    assert result["verdict"] == "valid"
    assert result["seconds"] > 0 and result["lines_per_s"] > 0
    assert result["load_s"] + result["metrics_s"] + result["check_s"] <= result["seconds"] + 0.01
    assert 10 < result["peak_rss_mb"] < 1024
