"""The benchmark hook measures a simulated run of the size asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[3]  # bench/ is run from the checkout, as `make bench` does


def test_the_analysis_benchmark_reports_speed_time_and_memory_for_the_lines_asked_for() -> None:
    child = subprocess.run(
        [sys.executable, "-m", "bench.analysis_measure", "20000"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    result = orjson.loads(child.stdout)
    assert abs(result["lines"] - 20_000) < 100
    assert result["verdict"] == "valid"
    assert result["seconds"] > 0 and result["lines_per_s"] > 0
    assert result["load_s"] + result["metrics_s"] + result["check_s"] <= result["seconds"] + 0.01
    assert 10 < result["peak_rss_mb"] < 1024
