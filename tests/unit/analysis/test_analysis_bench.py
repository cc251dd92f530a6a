"""The benchmark hook measures a simulated run of the size asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

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


@pytest.mark.parametrize(("lines_per_s", "met"), [(80.0, True), (70.0, False)])
def test_analysis_throughput_is_judged_by_its_ratio_to_the_orjson_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines_per_s: float, met: bool
) -> None:
    import bench.analysis_measure
    from bench import analysis_speed
    from bench.context import Context

    measured = {
        "lines": 100,
        "seconds": 1.0,
        "lines_per_s": lines_per_s,
        "load_s": 0.5,
        "metrics_s": 0.2,
        "check_s": 0.3,
        "peak_rss_mb": 100.0,
        "verdict": "valid",
        "cli_check_s": 1.0,
    }
    monkeypatch.setattr(bench.analysis_measure, "run_benchmark", lambda lines: measured)
    monkeypatch.setattr(
        analysis_speed, "decode_only", lambda lines, repeats: {"lines_per_s": 100.0}
    )
    section = analysis_speed.run(Context(quick=True, work=tmp_path, docker=None))
    throughput, memory, check = section.figures
    assert throughput.ratio == pytest.approx(lines_per_s / 100.0)
    assert (throughput.met, memory.met, check.met) == (met, True, True)


def test_the_clocks_benchmark_judges_every_event_and_the_models_error(tmp_path: Path) -> None:
    from bench import clocks
    from bench.context import Context

    section = clocks.run(Context(quick=True, work=tmp_path, docker=None))
    within, model = section.figures
    assert within.value == 100.0 and within.met
    assert section.data["events"] == section.data["within_epsilon"] > 1000
    assert model.value is not None and model.reference is not None
    assert 0 < model.value < model.reference  # longer trials: less of a VM's own noise
    assert [row[0] for row in section.rows] == ["original", "variation"]
