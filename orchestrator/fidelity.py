"""Will every VM of a sweep keep its rate within 0.01 %? The guard that answers before it runs.

A VM's achieved rate is the least-squares slope of its tick times. Each tick
lands a little off its deadline, by an amount that varies (the timer's
resolution, and above all other processes taking the CPU); call its spread
the jitter. With n ticks over T real seconds the fitted rate is then off by
about

    jitter * sqrt(12 / n) / T        (the slope's standard error, relative)

so a high time scale (small T) and a slow VM (few ticks) hurt most: the
slowest VM of the cell with the highest time scale decides. The worst of a
sweep's many VMs lies several standard errors out, not one: TAIL of them.

TICK_JITTER is the jitter of a quiet machine, so the guard refuses what could
not hold even then. The jitter follows the machine's other work more than the
sweep's concurrency, so the probe, which measures it as the machine is now,
refuses what does not hold now.

After any trial, `trial_fidelity` says whether its worst VM kept to the
tolerance; `clocklab up` and `trials` print a warning and the manifest records
it where one did not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrator.errors import ConfigError
from vm_node.rundir import FaultRecord

if TYPE_CHECKING:  # the CLI reads the constants here before any sweep runs
    from analysis.metrics.sweep import VmRow
    from orchestrator.experiment import Experiment

RATE_TOLERANCE = 1e-4  # 0.01 %: the largest |achieved / configured - 1| a VM may show
TAIL = 4.0  # the worst VM's error over its standard error: the extreme of many VMs
TICK_JITTER = 0.53e-3  # seconds, on a quiet machine (module docstring)


class RateFidelity(msgspec.Struct, frozen=True):
    """How far a trial's worst VM strayed from its configured rate, against the tolerance."""

    worst_error: float  # |achieved / configured - 1|, 0 where no VM gave a rate
    vm: int | None  # the worst VM
    measured: int  # VMs whose stop line gave an achieved rate
    tolerance: float
    # VMs a `pause` stopped: their missed ticks run late on purpose, so they are not judged
    paused: tuple[int, ...] = ()

    @property
    def held(self) -> bool:
        return self.worst_error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """As the manifest's `fidelity` records it, with whether it held."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["held"] = self.held
        return data

    def warning(self, vms: int, time_scale: float) -> str:
        return (
            f"fidelity lost: vm{self.vm} ran {self.worst_error:.4%} off its configured rate "
            f"(tolerance {self.tolerance:.4%}); this machine did not keep {vms} VMs at time "
            f"scale {time_scale:g} to their rates: fewer VMs, a lower time scale, --realtime "
            "or a quieter machine may"
        )


def vm_rate_errors(vm_summaries: Mapping[str, Mapping[str, Any] | None]) -> dict[int, float]:
    """|achieved / configured - 1| of each VM whose stop line (as the manifest keeps it)
    gave both rates."""
    errors = {}
    for vm, stop in vm_summaries.items():
        rates = stop or {}  # a VM that never stopped gave no rates
        achieved, configured = rates.get("rate_achieved"), rates.get("rate_configured")
        if achieved and configured:
            errors[int(vm)] = abs(achieved / configured - 1)
    return errors


def trial_fidelity(
    vm_summaries: Mapping[str, Mapping[str, Any] | None],
    tolerance: float = RATE_TOLERANCE,
    faults: Iterable[FaultRecord] = (),
) -> RateFidelity:
    """The worst VM's rate error, leaving out the VMs a `pause` among `faults` stopped."""
    paused = tuple(sorted({vm for f in faults if f.kind == "pause" for vm in f.targets}))
    errors = {vm: e for vm, e in vm_rate_errors(vm_summaries).items() if vm not in paused}
    if not errors:
        return RateFidelity(0.0, None, 0, tolerance, paused)
    worst = max(errors, key=errors.__getitem__)
    return RateFidelity(errors[worst], worst, len(errors), tolerance, paused)


def recorded_fidelity(recorded: Mapping[str, Any]) -> RateFidelity | None:
    """A manifest's `fidelity`, as `trial_fidelity` gave it; None where none was recorded."""
    return msgspec.convert(recorded, RateFidelity) if recorded else None


def fit_error(rate: float, duration: float, time_scale: float, jitter: float) -> float:
    """The standard error of one VM's achieved / configured rate: `rate` ticks per simulated
    second for `duration` simulated seconds, run `time_scale` times faster."""
    ticks = rate * duration
    real_seconds = duration / time_scale
    return jitter * math.sqrt(12 / ticks) / real_seconds


def slowest_rate(cell: Experiment) -> float:
    return min(cell.rates or cell.rate_range or (1.0,))


def worst_error(cell: Experiment, jitter: float) -> float:
    """The error the worst VM of `cell` may show: TAIL standard errors of its slowest VM."""
    return TAIL * fit_error(slowest_rate(cell), cell.duration, cell.time_scale, jitter)


def highest_time_scale(cell: Experiment, jitter: float, tolerance: float) -> float:
    """The time scale at which `cell`'s worst VM would just stay within `tolerance`
    (the error grows in proportion to the time scale)."""
    worst = worst_error(cell, jitter)
    return math.inf if worst == 0 else cell.time_scale * tolerance / worst


def guard(
    cells: Sequence[Experiment], jitter: float, tolerance: float, force: bool, source: str
) -> str:
    """Refuse (with `force`, warn) a sweep whose worst VM would stray beyond `tolerance` at
    this `jitter`; returns what it found, for the user."""
    cell = max(cells, key=lambda c: worst_error(c, jitter))
    worst = worst_error(cell, jitter)
    found = (
        f"{source}: tick jitter {jitter * 1e3:.2f} ms; worst VM of {cell.name} at time scale "
        f"{cell.time_scale:g} may be off by {worst:.4%} (tolerance {tolerance:.4%}; it holds "
        f"up to time scale {highest_time_scale(cell, jitter, tolerance):.3g})"
    )
    if worst <= tolerance:
        return found
    if force:
        return found + " — beyond, forced"
    raise ConfigError(
        "time_scale",
        f"{found}: lower --time-scale or --concurrency (or wait for a quieter machine), "
        "or pass --force to run anyway",
    )


def judge_probe(
    cells: Sequence[Experiment], rows: Sequence[VmRow], tolerance: float, force: bool
) -> str:
    """From the probe's VMs: refuse when one of them strayed, or when the jitter they
    measured predicts that the sweep's worst VM will."""
    if not rows:
        if force:
            return "probe: no completed trial to measure — forced"
        raise ConfigError("probe", "no probe trial completed: see <out>/probe/trials")
    worst = max(abs(r.rate_error) for r in rows)
    beyond = sum(abs(r.rate_error) > tolerance for r in rows)
    found = (
        f"probe: worst VM rate error {worst:.4%}, {beyond} of {len(rows)} VMs beyond "
        f"{tolerance:.4%}"
    )
    if beyond and not force:
        raise ConfigError("time_scale", f"{found}: lower --time-scale or --concurrency")
    jitters = [r.tick_jitter for r in rows if math.isfinite(r.tick_jitter)]
    jitter = statistics.median(jitters) if jitters else math.inf
    return found + "\n" + guard(cells, jitter, tolerance, force, "probe")
