"""The sim backend: trials in virtual time, against the real time they stand for.

- A one-minute trial of the `original` experiment (3 VMs): its wall time, the best
  of several, and how many times faster than the minute it simulates.
- `clocklab sweep phase --backend sim` (100 cells x 3 trials) in a fresh process:
  the trials (each checked, and its VMs tabled beside the model, as it ends), and
  the whole command.
- The cost curve: N = 3, 10, 50, 200 VMs over a simulated minute (rates 1-6):
  wall time, log lines and bytes per line.
- Determinism: every shipped experiment run twice from its seed, faults included,
  every log's hash compared; and once with another seed, which must differ.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from bench.context import Context
from bench.report import Figure, Section, Target
from orchestrator.backends.sim import SimTrial
from orchestrator.experiment import Experiment, load_experiment
from orchestrator.plan import plan_trial
from orchestrator.resources import shipped
from vm_node.rundir import RunDir

NAME = "sim"
TITLE = "The sim backend: virtual time against real time"
REPEATS = {False: 20, True: 5}
FLEETS = {False: (3, 10, 50, 200), True: (3, 10, 50)}
MINUTE = 60.0  # simulated seconds of a trial
QUICK_SWEEP = ("--trials", "1", "--duration", "10")  # 100 cells, one short trial each
TARGET_TRIAL_MS = 30.0
TARGET_SPEEDUP = 2000.0
TARGET_SWEEP_S = 30.0


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE, columns=("measure", "value"))
    out = ctx.work / "sim"
    trial_s = one_minute_trial(out / "minute", REPEATS[ctx.quick])
    section.add_row("one-minute 3-VM trial (original), best wall ms", trial_s * 1000)
    section.add_row("speed-up over real time", MINUTE / trial_s)
    section.figures += [
        Figure("sim: one-minute 3-VM trial", trial_s * 1000, "ms",
               target=Target("at_most", TARGET_TRIAL_MS, "ms"), ratio_of="none"),
        Figure("sim: speed-up over real time", MINUTE / trial_s, "x",
               target=Target("at_least", TARGET_SPEEDUP, "x"), ratio_of="none"),
    ]  # fmt: skip

    sweep = sweep_seconds(out / "sweep", QUICK_SWEEP if ctx.quick else ())
    section.add_row(f"sweep phase, {sweep['trials']} trials: trials, checked, s", sweep["trials_s"])
    section.add_row("  with the sweep's analysis (the command's wall), s", sweep["wall_s"])
    section.figures.append(
        Figure(f"sim: sweep of {sweep['trials']} trials, wall", sweep["wall_s"], "s",
               target=Target("at_most", TARGET_SWEEP_S, "s"), ratio_of="none",
               note="the trials, checked: " + f"{sweep['trials_s']:.1f} s")
    )  # fmt: skip

    curve = []
    duration = 10.0 if ctx.quick else MINUTE
    for vms in FLEETS[ctx.quick]:
        point = cost(out / "curve", vms, duration)
        curve.append(point)
        section.add_row(
            f"N={vms}, {duration:g} simulated s: wall s / lines / bytes per line",
            f"{point['wall_s']:.3f} / {point['lines']} / {point['bytes_per_line']:.0f}",
        )

    same = determinism(out / "determinism")
    for name, (equal, differs) in same.items():
        section.add_row(f"{name}: same seed byte-identical / other seed differs",
                        f"{'yes' if equal else 'NO'} / {'yes' if differs else 'NO'}")  # fmt: skip
    section.figures.append(
        Figure("sim: shipped experiments byte-identical from their seed",
               float(sum(equal for equal, _ in same.values())), f"of {len(same)}",
               target=Target("at_least", float(len(same)), f"of {len(same)}"), ratio_of="none")
    )  # fmt: skip
    section.data = {"trial_s": trial_s, "sweep": sweep, "curve": curve, "determinism": same}
    return section


def one_minute_trial(out: Path, repeats: int) -> float:
    """The best wall seconds of a one-minute trial of `original`, run by SimTrial."""
    experiment, _ = load_experiment("original")
    plan = plan_trial(experiment.with_overrides(duration=MINUTE), 1)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        SimTrial(plan, out).run()
        best = min(best, time.perf_counter() - started)
    return best


def sweep_seconds(out: Path, extra: tuple[str, ...]) -> dict[str, float]:
    """`clocklab sweep phase --backend sim` in a fresh process: its trials and its wall."""
    command = [sys.executable, "-m", "orchestrator.cli", "sweep", "phase", "--backend", "sim"]
    started = time.perf_counter()
    subprocess.run([*command, "--out", str(out), *extra], check=True, capture_output=True)
    wall = time.perf_counter() - started
    summary = json.loads((out / "sweep.json").read_text())
    return {"trials": summary["ran"], "trials_s": summary["trial_seconds"], "wall_s": wall}


def cost(out: Path, vms: int, duration: float) -> dict[str, float]:
    """A trial of `vms` VMs (rates 1-6) over `duration` simulated seconds: its cost."""
    experiment = Experiment(name=f"cost-n{vms}", vms=vms, duration=duration, trials=1)
    started = time.perf_counter()
    result = SimTrial(plan_trial(experiment, 1), out).run()
    wall = time.perf_counter() - started
    logs = [path for _, _, path in result.run_dir.log_files()]
    size = sum(p.stat().st_size for p in logs)
    lines = sum(p.read_bytes().count(b"\n") for p in logs)
    return {"vms": vms, "wall_s": wall, "lines": lines, "bytes_per_line": size / lines}


def determinism(out: Path) -> dict[str, tuple[bool, bool]]:
    """Each shipped experiment: (two runs of its seed equal, a run of another seed differs)."""
    found = {}
    for path in sorted(shipped("experiments").glob("*.yaml")):
        experiment, _ = load_experiment(str(path))
        runs = [
            hashes(SimTrial(plan_trial(e, 1), out / str(i)).run().run_dir)
            for i, e in enumerate(
                (
                    experiment,
                    experiment,
                    msgspec.structs.replace(experiment, seed=experiment.seed + 1),
                )
            )
        ]
        found[experiment.name] = (runs[0] == runs[1], runs[0] != runs[2])
    return found


def hashes(run_dir: RunDir) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for _, _, p in run_dir.log_files()]
