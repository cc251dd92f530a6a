"""How fast load, metrics and check run on a synthetic run of a given size, and in how much memory.

`run_benchmark(lines)` writes the run to a temporary directory, then measures
in a fresh Python process, so that the peak memory is that of the analysis
alone. The loading helper it forks shares most of its pages with it, so their
two RSS would count those twice: `group_peak_mb` measures the pair in a run of
its own, sampling each process's PSS (a shared page counted once, split
between them); sampling slows the run, so that run is not timed.
`python -m bench.analysis_measure [LINES]` prints the result as JSON.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import suppress
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


def group_peak_mb(lines: int, every: float = 0.01) -> dict[str, float]:
    """The analysis's peak memory with its loading helper: the largest sampled sum of the
    processes' PSS, or the analysis process's own peak RSS where that is larger (the
    samples can miss a short peak; VmHWM cannot)."""
    from vm_node.sim import SyntheticRun, write_run

    with tempfile.TemporaryDirectory(prefix="clocklab-bench-") as tmp:
        run_dir = write_run(SyntheticRun.for_lines(lines), Path(tmp))
        command = [sys.executable, "-m", "bench.analysis_measure", "--measure", str(run_dir)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE)
        sampled = 0.0
        while child.poll() is None:
            pids = [child.pid, *_children(child.pid)]
            sampled = max(sampled, sum(_pss_mb(pid) for pid in pids))
            time.sleep(every)
        stdout, _ = child.communicate()
    own = float(orjson.loads(stdout)["peak_rss_mb"])
    return {"group_peak_mb": round(max(sampled, own), 1), "sampled_pss_mb": round(sampled, 1)}


def _children(pid: int) -> list[int]:
    with suppress(OSError), open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(child) for child in f.read().split()]
    return []


def _pss_mb(pid: int) -> float:
    """A process's proportional set size in MiB; 0 once it has gone."""
    with suppress(OSError), open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cli_check_seconds(run_dir: Path) -> float:
    """Wall seconds of `clocklab check run_dir` in a fresh interpreter."""
    clocklab = Path(sys.executable).with_name("clocklab")
    command = [str(clocklab)] if clocklab.exists() else [sys.executable, "-m", "orchestrator.cli"]
    started = time.perf_counter()
    subprocess.run([*command, "check", str(run_dir)], check=True, capture_output=True)
    return time.perf_counter() - started


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
        "peak_rss_mb": round(own_peak(), 1),
        # The loading helper's peak; it counts the pages it shares with this process too.
        "helper_peak_rss_mb": round(peak(resource.RUSAGE_CHILDREN), 1),
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

    return peak(resource.RUSAGE_SELF)


def peak(who: int) -> float:
    """Peak RSS in MiB (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(who).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        result = measure(Path(argv[1]))
    else:
        result = run_benchmark(int(argv[0]) if argv else 1_000_000)
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
