"""How fast load, metrics and check run on a synthetic run of a given size, and in how much memory.

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


def run_benchmark(lines: int) -> dict[str, Any]:
    """lines, seconds (load + metrics + check), lines_per_s, the three phases, peak_rss_mb,
    and cli_check_s: the wall time of `clocklab check` on the same run, start-up included."""
    # Imported here: the measuring process runs this module too, and must hold the analysis only.
    from vm_node.sim import SyntheticRun, write_run

    with tempfile.TemporaryDirectory(prefix="clocklab-bench-") as tmp:
        run_dir = write_run(SyntheticRun.for_lines(lines), Path(tmp))
        child = subprocess.run(
            [sys.executable, "-m", "bench.analysis_measure", "--measure", str(run_dir)],
            check=True,
            capture_output=True,
        )
        result: dict[str, Any] = orjson.loads(child.stdout)
        result["cli_check_s"] = round(cli_check_seconds(run_dir), 3)
    return result


def cli_check_seconds(run_dir: Path) -> float:
    """Wall seconds of `clocklab check run_dir` in a fresh interpreter."""
    clocklab = Path(sys.executable).with_name("clocklab")
    command = [str(clocklab)] if clocklab.exists() else [sys.executable, "-m", "orchestrator.cli"]
    started = time.perf_counter()
    subprocess.run([*command, "check", str(run_dir)], check=True, capture_output=True)
    return time.perf_counter() - started


def measure(run_dir: Path) -> dict[str, Any]:
    """Time each phase on one trial directory, in this process."""
    from analysis.check.clocks import check_trial
    from analysis.load import load_trial
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
        "peak_rss_mb": round(own_peak(), 1),
        "verdict": verdict.value,
    }


def own_peak() -> float:
    """This process's peak RSS in MiB: VmHWM, the peak of its own address space. ru_maxrss
    would also count the process it was spawned from: Linux carries the peak of the
    address space an exec replaces, here the whole benchmark runner's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        result = measure(Path(argv[1]))
    else:
        result = run_benchmark(int(argv[0]) if argv else 1_000_000)
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
