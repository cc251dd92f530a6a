"""How fast load, metrics and check run on a synthetic run of a given size.

`run_benchmark(lines)` writes the run to a temporary directory, then measures
in a fresh Python process, so that the peak memory is that of the analysis
alone. `python -m bench.analysis_measure [LINES]` prints the result as JSON.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from analysis.testing import SyntheticRun, write_run


def run_benchmark(lines: int) -> dict[str, Any]:
    """lines, seconds (load + metrics + check), lines_per_s, the three phases, peak_rss_mb."""
    with tempfile.TemporaryDirectory(prefix="clocklab-bench-") as tmp:
        run_dir = write_run(SyntheticRun.for_lines(lines), Path(tmp))
        child = subprocess.run(
            [sys.executable, "-m", "bench.analysis_measure", "--measure", str(run_dir)],
            check=True,
            capture_output=True,
        )
    result: dict[str, Any] = orjson.loads(child.stdout)
    return result


def measure(run_dir: Path) -> dict[str, Any]:
    """Time each phase on one trial directory, in this process."""
    import resource

    from analysis.check.clocks import check_trial
    from analysis.load.runs import load_trial
    from analysis.metrics.traces import traces
    from analysis.metrics.trial import trial_metrics

    started = time.perf_counter()
    trial = load_trial(run_dir)
    loaded = time.perf_counter()
    trial_metrics(trial, traces(trial))
    measured = time.perf_counter()
    verdict = check_trial(trial).verdict
    checked = time.perf_counter()
    seconds = checked - started
    return {
        "lines": len(trial.lines),
        "seconds": round(seconds, 3),
        "lines_per_s": round(len(trial.lines) / seconds),
        "load_s": round(loaded - started, 3),
        "metrics_s": round(measured - loaded, 3),
        "check_s": round(checked - measured, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "verdict": verdict.value,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        result = measure(Path(argv[1]))
    else:
        result = run_benchmark(int(argv[0]) if argv else 1_000_000)
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
