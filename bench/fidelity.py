"""1. Timing fidelity: does each VM keep the rate it is told, and how late is each tick?

A 3-VM trial (rates 1, 3 and 6 ticks per simulated second: the slowest, a
middle and the fastest rate the original exercise draws) at time scales 1, 10,
100 and 1000, then 3000 and 10000 to find where it stops holding, on each
backend. Per VM: the achieved rate (inverse
least-squares slope of tick times against tick index, from the VM's `stop`
line) against the configured one, and each tick's lateness behind its
deadline. Reference, measured in the same run just before each trial: the bare
asyncio loop of bench.deadline at the same real rates, on the same backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.containers import Docker, retried
from bench.context import Context
from bench.report import Figure, Section, Target
from bench.stats import error_pct, fitted_rate, percentiles, worst
from bench.trials import TrialRun, TrialSpec, run_trial

NAME = "fidelity"
TITLE = "Timing fidelity: 3 VMs, achieved vs configured rate, tick lateness"
RATES = (1.0, 3.0, 6.0)
# time scale -> real seconds of the trial (the reference runs at most REFERENCE_MAX of them);
# 3000 and 10000 only look for the highest time scale that still holds
FULL = {1: 60.0, 10: 20.0, 100: 10.0, 1000: 10.0, 3000: 5.0, 10000: 5.0}
QUICK = {1: 4.0, 1000: 3.0}
REFERENCE_MAX = {False: 20.0, True: 3.0}
WITHIN_PCT = 0.01
TARGET_SCALES = (1, 100, 1000)
LATENESS_SCALES = (1, 10, 100, 1000)  # the p99 lateness target covers these
LATENESS_P99_MS = 2.0


@dataclass(frozen=True, slots=True)
class Reference:
    errors_pct: list[float]
    lateness: np.ndarray  # seconds


def reference(ctx: Context, backend: str, scale: float, seconds: float) -> Reference:
    """bench.deadline at the trial's real rates: on the host, or in one container."""
    args = deadline_args(RATES, scale, seconds)
    if backend == "docker":
        assert ctx.docker is not None
        return reference_from(in_container(ctx.docker, args, seconds))
    out = subprocess.run(
        [sys.executable, "-m", "bench.deadline", *args], check=True, capture_output=True
    ).stdout
    return reference_from(out)


def deadline_args(rates: tuple[float, ...], scale: float, seconds: float) -> list[str]:
    return ["--rates", ",".join(repr(r * scale) for r in rates), "--seconds", repr(seconds)]


def in_container(docker: Docker, args: list[str], seconds: float) -> bytes:
    """bench.deadline's output from one container on `docker`'s engine."""

    def attempt() -> bytes:
        container = docker.start("deadline", args)
        try:
            return docker.output(container, timeout=seconds + 60)
        finally:
            docker.remove(container)

    return retried("the reference loop in a container", attempt)


def reference_from(out: bytes) -> Reference:
    """Rate errors and lateness of bench.deadline's loops, from its JSON output."""
    result = json.loads(out)
    errors, late = [], []
    for loop in result["loops"]:
        times = np.asarray(loop["times"])
        k = np.arange(len(times))
        errors.append(error_pct(fitted_rate(k, times), loop["rate"]))
        late.append(times - (loop["start_at"] + k / loop["rate"]))
    return Reference(errors, np.concatenate(late))


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "backend",
            "time scale",
            "real s",
            "ticks",
            "rate error per VM (%)",
            "worst (%)",
            "late p50 (ms)",
            "late p99 (ms)",
            "late max (ms)",
            "ref worst (%)",
            "ref p50 (ms)",
            "ref p99 (ms)",
        ),
    )
    plan = QUICK if ctx.quick else FULL
    results: dict[str, dict[int, tuple[TrialRun, Reference]]] = {}
    for backend in ctx.backends:
        results[backend] = {}
        for scale, seconds in plan.items():
            print(f"  {backend}, time scale {scale}: {seconds:g} s (reference first)")
            ref = reference(ctx, backend, scale, min(seconds, REFERENCE_MAX[ctx.quick]))
            spec = TrialSpec.at_rates(f"bench-fidelity-{backend}-x{scale}", RATES, scale, seconds)
            trial = run_trial(spec, backend, ctx.work / NAME)
            results[backend][scale] = (trial, ref)
            _add_row(section, trial, ref, seconds)
    section.data = {
        backend: {str(scale): _data(trial, ref) for scale, (trial, ref) in runs.items()}
        for backend, runs in results.items()
    }
    for backend, runs in results.items():
        _add_figures(section, backend, runs)
    if not ctx.docker:
        section.notes.append(f"docker backend skipped: {ctx.docker_missing}")
    section.notes.append(
        "lateness: `timestamp - (start_at + tick / (rate * time_scale))` of every tick of "
        "every VM; reference: a bare asyncio loop sleeping to the same absolute deadlines "
        "(bench/deadline.py), one process per rate, on the same backend"
    )
    return section


def _add_row(section: Section, trial: TrialRun, ref: Reference, seconds: float) -> None:
    late = percentiles(trial.lateness(), 1e3)
    ref_late = percentiles(ref.lateness, 1e3)
    errors = " / ".join(f"{t.error_pct:+.4f}" for t in trial.timings)
    if not trial.ok:
        errors += f" (trial {trial.manifest.outcome or 'did not run'})"
    section.add_row(
        trial.backend,
        f"{trial.spec.time_scale:g}",
        seconds,
        sum(t.ticks for t in trial.timings),
        errors,
        f"{trial.worst_error_pct:.4f}",
        late["p50"],
        late["p99"],
        late["max"],
        f"{worst(ref.errors_pct):.4f}",
        ref_late["p50"],
        ref_late["p99"],
    )


def _data(trial: TrialRun, ref: Reference) -> dict[str, Any]:
    return {
        "ok": trial.ok,
        "attempts": trial.attempts,
        "outcome": trial.manifest.outcome,
        "error": trial.manifest.error,
        "real_seconds": trial.spec.real_duration,
        "vms": [
            {
                "vm": t.vm,
                "rate": t.rate,
                "rate_achieved": t.rate_achieved,
                "rate_fitted": t.rate_fitted,
                "error_pct": t.error_pct,
                "ticks": t.ticks,
                "behind": t.behind,
                "lateness_ms": percentiles(t.lateness, 1e3),
            }
            for t in trial.timings
        ],
        "worst_error_pct": trial.worst_error_pct,
        "lateness_ms": percentiles(trial.lateness(), 1e3),
        "reference": {
            "errors_pct": ref.errors_pct,
            "lateness_ms": percentiles(ref.lateness, 1e3),
        },
    }


def _add_figures(
    section: Section, backend: str, runs: dict[int, tuple[TrialRun, Reference]]
) -> None:
    within = [s for s, (trial, _) in sorted(runs.items()) if trial.worst_error_pct <= WITHIN_PCT]
    missed = [s for s in runs if s not in within]
    section.figures.append(
        Figure(
            f"{backend}: highest time scale with every VM within {WITHIN_PCT} %",
            max(within) if within else None,
            "x",
            reference_name=f"tested {', '.join(f'{s:g}' for s in sorted(runs))}"
            + (f"; missed at {', '.join(f'{s:g}' for s in sorted(missed))}" if missed else ""),
            ratio_of="none",
        )
    )
    for scale in TARGET_SCALES:
        if scale not in runs:
            continue
        trial, ref = runs[scale]
        section.figures.append(
            Figure(
                f"{backend}: worst VM rate error at time scale {scale}",
                trial.worst_error_pct,
                "%",
                reference=worst(ref.errors_pct),
                reference_name="bare asyncio deadline loop",
                target=Target("at_most", WITHIN_PCT, "%"),
                ratio_of="none",
            )
        )
    covered = {s: r for s, r in runs.items() if s in LATENESS_SCALES}
    p99 = {s: percentiles(trial.lateness(), 1e3)["p99"] for s, (trial, _) in covered.items()}
    ref_p99 = {s: percentiles(ref.lateness, 1e3)["p99"] for s, (_, ref) in covered.items()}
    scale = max(p99, key=lambda s: p99[s])
    section.figures.append(
        Figure(
            f"{backend}: tick lateness p99, worst of time scales "
            f"{', '.join(f'{s:g}' for s in sorted(covered))} (at {scale:g})",
            p99[scale],
            "ms",
            reference=ref_p99[scale],
            reference_name="bare asyncio deadline loop",
            target=Target("at_most", LATENESS_P99_MS, "ms"),
        )
    )
