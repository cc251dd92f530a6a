"""What a sweep found: a per-VM table of measured against predicted, and a phase diagram.

The phase diagram puts each trial at (slowest / fastest configured rate, event
range), colours each cell of that grid by the share of VMs whose queue grew,
and draws the queueing model's boundary on top: left of it, the slowest VM's
queue grows. Where the boundary lies depends on the rates between the two
extremes, so it is drawn for the two extreme shapes: one slow VM among fast
ones (it grows first), and one fast VM among slow ones.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis.conclusions import CLEAR_LOAD
from analysis.load import load_trials
from analysis.metrics import TrialMetrics, trial_metrics
from analysis.model import Floats, TrialLog
from analysis.queueing import predict
from analysis.series import traces

if TYPE_CHECKING:
    from matplotlib.axes import Axes

RATIO_BINS = 10  # columns of the phase diagram over slowest / fastest in (0, 1]


@dataclass(frozen=True, slots=True)
class VmRow:
    """One VM of one trial of a sweep, as measured and as predicted."""

    cell: str
    trial: int
    vm: int
    vms: int
    event_range: int
    rate: float
    slowest_over_fastest: float  # of the trial's configured rates
    ticks: int
    rate_error: float  # achieved / configured - 1
    receive_share: float
    predicted_receive_share: float
    arrival_rate: float  # predicted lambda, messages per simulated second
    load: float  # predicted lambda / mu
    queue_growth: float  # measured: final queue over the duration, per simulated second
    predicted_queue_growth: float
    queue_grows: bool  # measured: metrics' unbounded-queue test
    predicted_queue_grows: bool


def vm_rows(trial: TrialLog) -> list[VmRow]:
    """The rows of one trial (none when the model has nothing to go on)."""
    m = trial_metrics(trial, traces(trial))
    event_range = next((f.config.event_range for f in trial.files if f.config), None)
    if not m.predictions or event_range is None:
        return []
    rates = [vm.rate for vm in m.vms]
    ratio = min(rates) / max(rates)
    return [_row(m, i, event_range, ratio) for i in range(len(m.vms))]


def _row(m: TrialMetrics, i: int, event_range: int, ratio: float) -> VmRow:
    vm, model = m.vms[i], m.predictions[i]
    return VmRow(
        cell=m.experiment,
        trial=m.trial,
        vm=vm.vm,
        vms=len(m.vms),
        event_range=event_range,
        rate=vm.rate,
        slowest_over_fastest=ratio,
        ticks=vm.ticks,
        rate_error=vm.achieved / vm.rate - 1,
        receive_share=vm.share(vm.receive),
        predicted_receive_share=model.receive_share,
        arrival_rate=model.arrival_rate,
        load=model.load,
        queue_growth=vm.queue_final / m.duration if m.duration > 0 else math.nan,
        predicted_queue_growth=model.queue_growth,
        queue_grows=vm.queue_unbounded,
        predicted_queue_grows=model.queue_grows,
    )


@dataclass(frozen=True, slots=True)
class SweepScores:
    """How well the model did over a sweep's VM-trials."""

    vm_trials: int
    share_error: float  # mean |predicted - measured| receive share
    clear: int  # VM-trials with |lambda / mu - 1| >= CLEAR_LOAD
    clear_right: int  # of those, growth classified right
    all_right: int

    def to_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def scores(rows: Sequence[VmRow]) -> SweepScores:
    clear = [r for r in rows if abs(r.load - 1) >= CLEAR_LOAD]
    errors = [abs(r.predicted_receive_share - r.receive_share) for r in rows]
    return SweepScores(
        vm_trials=len(rows),
        share_error=float(np.mean(errors)) if errors else math.nan,
        clear=len(clear),
        clear_right=sum(r.queue_grows == r.predicted_queue_grows for r in clear),
        all_right=sum(r.queue_grows == r.predicted_queue_grows for r in rows),
    )


def write_results(trials_root: Path, sweep_dir: Path) -> SweepScores:
    """vms.csv and phase.png in `sweep_dir` from every completed trial under `trials_root`."""
    from analysis import figures

    rows = [
        row
        for trial in load_trials([trials_root])
        if trial.manifest.outcome == "completed"
        for row in vm_rows(trial)
    ]
    write_csv(rows, sweep_dir / "vms.csv")
    if rows:
        png = figures.single(plot_phase_diagram, phase_diagram(rows), size=(7.5, 4.2))
        (sweep_dir / "phase.png").write_bytes(png)
    return scores(rows)


def write_csv(rows: Iterable[VmRow], path: Path) -> int:
    """The table as CSV, one VM-trial a line; returns how many."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(VmRow)])
        for row in rows:
            writer.writerow(astuple(row))
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class PhaseDiagram:
    """Share of growing queues per (ratio bin, event range), and the model's boundaries."""

    event_ranges: tuple[int, ...]
    share: Floats  # [event range index, ratio bin], nan where no trial fell
    boundaries: tuple[tuple[str, tuple[float, ...]], ...]  # label, critical ratio per range
    vms: int


def phase_diagram(rows: Sequence[VmRow]) -> PhaseDiagram:
    event_ranges = tuple(sorted({r.event_range for r in rows}))
    grown = np.zeros((len(event_ranges), RATIO_BINS))
    counted = np.zeros((len(event_ranges), RATIO_BINS))
    for r in rows:
        column = min(RATIO_BINS - 1, int(r.slowest_over_fastest * RATIO_BINS))
        row = event_ranges.index(r.event_range)
        grown[row, column] += r.queue_grows
        counted[row, column] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(counted > 0, grown / np.maximum(counted, 1), np.nan)
    vms = max((r.vms for r in rows), key=[r.vms for r in rows].count, default=3)
    boundaries = tuple(
        (label, tuple(critical_ratio(e, vms, slow) for e in event_ranges))
        for label, slow in (
            ("model: one slow VM among fast ones", 1),
            ("model: one fast VM among slow ones", vms - 1),
        )
    )
    return PhaseDiagram(event_ranges, share, boundaries, vms)


def critical_ratio(event_range: int, vms: int, slow: int) -> float:
    """The slowest / fastest ratio below which the slow VMs' queues grow, by bisection
    (`slow` VMs at the low rate, the others at 1); 0 when they never grow."""
    if vms < 2:
        return 0.0

    def grows(ratio: float) -> bool:
        rates = [ratio] * slow + [1.0] * (vms - slow)
        return predict(rates, event_range)[0].queue_grows

    low, high = 1e-6, 1.0
    if not grows(low):
        return 0.0
    if grows(high):
        return 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if grows(middle) else (low, middle)
    return low


def plot_phase_diagram(ax: Axes, data: PhaseDiagram) -> None:
    """Measured share of growing queues as colour; the model's boundaries as lines."""
    rows = len(data.event_ranges)
    image = ax.imshow(
        data.share, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
        extent=(0, 1, -0.5, rows - 0.5), interpolation="nearest",
    )  # fmt: skip
    ax.figure.colorbar(image, ax=ax, label="share of VMs whose queue grew (measured)")
    for k, (label, ratios) in enumerate(data.boundaries):
        ax.plot(ratios, range(rows), color="tab:orange" if k == 0 else "tab:red", lw=2,
                ls="-" if k == 0 else "--", marker="o", label=label)  # fmt: skip
    ax.set_yticks(range(rows), [str(e) for e in data.event_ranges])
    ax.set(xlim=(0, 1), xlabel="slowest / fastest configured rate", ylabel="event range",
           title=f"where queues grow ({data.vms} VMs)")  # fmt: skip
    ax.legend(fontsize="x-small", loc="upper right")
