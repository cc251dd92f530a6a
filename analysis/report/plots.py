"""One function per figure, each drawing its data on a Matplotlib `Axes` it is given.

Nothing here creates figures or imports pyplot: `figures.py` lays the axes
out. Long series are thinned to a few thousand points before drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.columns import INTERNAL, RECEIVE, SEND, Floats, Ints
from analysis.metrics.traces import FaultSpan, TrialTraces, VmTrace
from analysis.metrics.trial import TrialMetrics
from analysis.report.space_time import SpaceTimeWindow

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_POINTS = 4000
FAULT_COLOURS = {"kill": "tab:red", "pause": "tab:purple", "partition": "tab:brown"}
EVENT_STYLE = {  # code: (label, colour, marker)
    INTERNAL: ("internal", "0.55", "o"),
    SEND: ("send", "tab:blue", "^"),
    RECEIVE: ("receive", "tab:orange", "s"),
}


@dataclass(frozen=True, slots=True)
class VmZoom:
    """A stretch of one VM's clock: ticks `start` to `end` (indices into the trace)."""

    name: str
    trace: VmTrace
    start: int
    end: int
    faults: tuple[FaultSpan, ...] = ()


@dataclass(frozen=True, slots=True)
class JumpsByRate:
    """The jumps of every receive of an experiment, pooled by configured rate."""

    name: str
    jumps: tuple[tuple[float, Ints], ...]


@dataclass(frozen=True, slots=True)
class RateEffect:
    """One number per VM-trial against its rate, for every experiment."""

    label: str
    points: tuple[tuple[str, Floats, Floats], ...]  # experiment, rates, values


@dataclass(frozen=True, slots=True)
class ModelFit:
    """The model's prediction against the measurement, one point per VM-trial."""

    label: str
    points: tuple[tuple[str, Floats, Floats], ...]  # experiment, predicted, measured


@dataclass(frozen=True, slots=True)
class PhaseDiagram:
    """Share of growing queues per (ratio bin, event range), and the model's boundaries."""

    event_ranges: tuple[int, ...]
    share: Floats  # [event range index, ratio bin], nan where no trial fell
    boundaries: tuple[tuple[str, tuple[float, ...]], ...]  # label, critical ratio per range
    vms: int


@dataclass(frozen=True, slots=True)
class ClockPoints:
    """One experiment's clocks: per VM-trial, then per trial."""

    name: str
    ratio: Floats  # the fastest VM's rate over the VM's own
    lamport_lead: Floats  # seconds
    hlc_lead: Floats  # largest l - pt, seconds
    bloom_fp: Floats
    counter: Floats  # per trial: HLC's largest c
    bound: Floats  # per trial: N·(ε + 1), nan where ε is unknown


@dataclass(frozen=True, slots=True)
class ClockComparison:
    experiments: tuple[ClockPoints, ...]
    epsilon: float  # the largest ε of any trial, seconds (nan: none known)


def vm_colour(vm: int) -> str:
    return f"C{vm % 10}"


def plot_clocks(ax: Axes, traces: TrialTraces) -> None:
    """Logical clock over simulated time, one line per VM."""
    for t in traces.vms:
        x, y = _thin(t.time, t.lamport)
        ax.step(
            x, y, where="post", color=vm_colour(t.vm), lw=1.2, label=f"vm{t.vm} ({_rate(t.rate)}/s)"
        )
    _shade_faults(ax, traces.faults)
    ax.set(title=traces.name, xlabel="simulated time (s)", ylabel="Lamport clock")
    ax.legend(fontsize="x-small", loc="upper left")


def plot_vm_zoom(ax: Axes, zoom: VmZoom) -> None:
    """One VM's clock tick by tick; vertical steps taller than one are receive jumps."""
    t = zoom.trace
    window = slice(zoom.start, zoom.end)
    time, lamport, event = t.time[window], t.lamport[window], t.event[window]
    ax.step(time, lamport, where="post", color=vm_colour(t.vm), lw=1, alpha=0.6)
    if len(time):
        _shade_faults(ax, [f for f in zoom.faults if f.end >= time[0] and f.start <= time[-1]])
        ax.set_xlim(time[0], time[-1])
    for code, (label, colour, marker) in EVENT_STYLE.items():
        mask = event == code
        ax.scatter(
            time[mask], lamport[mask], s=18, color=colour, marker=marker, label=label, zorder=3
        )
    ax.set(
        title=f"{zoom.name}: vm{t.vm} ({_rate(t.rate)}/s) close up",
        xlabel="simulated time (s)",
        ylabel="Lamport clock",
    )
    ax.legend(fontsize="x-small", loc="upper left")


def plot_event_counts(ax: Axes, metrics: TrialMetrics) -> None:
    """Internal, send and receive events per VM, as grouped bars."""
    x = np.arange(len(metrics.vms))
    width = 0.27
    for k, (code, attr) in enumerate(
        ((INTERNAL, "internal"), (SEND, "send"), (RECEIVE, "receive"))
    ):
        label, colour, _ = EVENT_STYLE[code]
        ax.bar(
            x + (k - 1) * width,
            [getattr(vm, attr) for vm in metrics.vms],
            width,
            color=colour,
            label=label,
        )
    ax.set_xticks(x, [f"vm{vm.vm}\n{_rate(vm.rate)}/s" for vm in metrics.vms], fontsize="small")
    ax.set(title=metrics.name, ylabel="events")
    ax.legend(fontsize="x-small")


def plot_queues(ax: Axes, traces: TrialTraces) -> None:
    """Inbox length after each tick, one line per VM."""
    for t in traces.vms:
        x, y = _thin(t.time, t.queue)
        ax.step(
            x, y, where="post", color=vm_colour(t.vm), lw=1.2, label=f"vm{t.vm} ({_rate(t.rate)}/s)"
        )
    _shade_faults(ax, traces.faults)
    ax.set(title=traces.name, xlabel="simulated time (s)", ylabel="messages waiting")
    ax.legend(fontsize="x-small", loc="upper left")


def plot_drift(ax: Axes, traces: TrialTraces) -> None:
    """How far each VM's clock trails the fastest VM's, over time."""
    fastest = traces.clocks[traces.fastest]
    for t in traces.vms:
        if t.vm != traces.fastest:
            ax.plot(
                traces.grid,
                fastest - traces.clocks[t.vm],
                color=vm_colour(t.vm),
                lw=1.2,
                label=f"vm{t.vm} ({_rate(t.rate)}/s)",
            )
    ax.axhline(0, color="0.3", lw=0.8)
    _shade_faults(ax, traces.faults)
    ax.set(
        title=f"{traces.name}: behind vm{traces.fastest}",
        xlabel="simulated time (s)",
        ylabel="clock difference",
    )
    if len(traces.vms) > 1:
        ax.legend(fontsize="x-small", loc="upper left")


def plot_jump_histograms(ax: Axes, data: JumpsByRate) -> None:
    """Distribution of receive jumps, one outline per clock rate."""
    biggest = max((int(j.max()) for _, j in data.jumps if len(j)), default=1)
    bins: list[float] | int = list(np.arange(0.5, biggest + 1.5)) if biggest <= 60 else 60
    for k, (rate, jumps) in enumerate(data.jumps):
        if len(jumps):
            ax.hist(
                jumps,
                bins=bins,
                histtype="step",
                lw=1.5,
                density=True,
                color=f"C{k % 10}",
                label=f"{_rate(rate)}/s (n={len(jumps)})",
            )
    ax.set_yscale("log")
    ax.set(
        title=f"{data.name}: jumps on receive",
        xlabel="jump (clock units)",
        ylabel="share of receives",
    )
    if any(len(jumps) for _, jumps in data.jumps):
        ax.legend(fontsize="x-small", title="clock rate", title_fontsize="x-small")


def plot_space_time(ax: Axes, window: SpaceTimeWindow) -> None:
    """A lane per VM, events in time order labelled with their Lamport clock, messages as arrows."""
    for code, (label, colour, marker) in EVENT_STYLE.items():
        mask = window.event == code
        ax.scatter(window.time[mask], window.vm[mask], s=24, color=colour, marker=marker,
                   label=label, zorder=3)  # fmt: skip
    for x, vm, lamport in zip(window.time.tolist(), window.vm.tolist(), window.lamport.tolist(),
                              strict=True):  # fmt: skip
        ax.annotate(str(lamport), (x, vm), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize=6, color="0.25")  # fmt: skip
    for a, b in zip(window.arrow_from.tolist(), window.arrow_to.tolist(), strict=True):
        ax.annotate("", xy=(window.time[b], window.vm[b]), xytext=(window.time[a], window.vm[a]),
                    arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 0.8})  # fmt: skip
    ax.set_yticks(range(window.vms), [f"vm{vm}" for vm in range(window.vms)])
    ax.set_ylim(-0.6, window.vms - 0.3)
    for vm in range(window.vms):
        ax.axhline(vm, color="0.85", lw=0.8, zorder=0)
    ax.set(title=f"{window.name}: simulated {window.start:.1f}–{window.end:.1f} s",
           xlabel="simulated time (s); numbers are Lamport clocks")  # fmt: skip
    ax.legend(
        fontsize="x-small", loc="upper left", ncols=3, bbox_to_anchor=(0, 1.16), frameon=False
    )


def plot_rate_effect(ax: Axes, data: RateEffect) -> None:
    """One point per VM-trial: its clock rate against a number, per experiment."""
    for k, (name, rates, values) in enumerate(data.points):
        jitter = (np.random.default_rng(k).random(len(rates)) - 0.5) * 0.15
        ax.scatter(rates + jitter, values, s=20, alpha=0.75, color=f"C{k % 10}", label=name)
    ax.set(xlabel="configured clock rate (ticks/s)", ylabel=data.label, title=data.label)
    ax.legend(fontsize="x-small")


def plot_model_fit(ax: Axes, data: ModelFit) -> None:
    """Predicted against measured, per experiment; on the diagonal the model is exact."""
    highest = 0.0
    for k, (name, predicted, measured) in enumerate(data.points):
        ax.scatter(predicted, measured, s=20, alpha=0.75, color=f"C{k % 10}", label=name)
        highest = max(highest, float(np.nanmax(np.r_[predicted, measured, 0.0])))
    top = highest * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.5", lw=1, ls="--", label="measured = predicted")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"predicted {data.label}",
           ylabel=f"measured {data.label}", title=data.label)  # fmt: skip
    ax.legend(fontsize="x-small")


def _shade_faults(ax: Axes, faults: Sequence[FaultSpan]) -> None:
    """A band per fault window, coloured by kind, each kind and target named once."""
    named: set[str] = set()
    for fault in faults:
        label = f"{fault.kind} {','.join(f'vm{t}' for t in fault.targets)}".strip()
        colour = FAULT_COLOURS.get(fault.kind, "tab:gray")
        ax.axvspan(fault.start, fault.end, color=colour, alpha=0.13,
                   label=None if label in named else label)  # fmt: skip
        named.add(label)


def _thin(x: Floats, y: Any) -> tuple[Floats, Any]:
    """At most MAX_POINTS points, evenly strided, always keeping the last."""
    if len(x) <= MAX_POINTS:
        return x, y
    keep = np.unique(np.r_[np.linspace(0, len(x) - 1, MAX_POINTS).astype(np.int64), len(x) - 1])
    return x[keep], y[keep]


def _rate(rate: float) -> str:
    return f"{rate:g}"


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


def plot_clock_leads(ax: Axes, data: ClockComparison) -> None:
    """Lamport's lead over physical time beside HLC's l - pt, against the rate ratio."""
    for k, e in enumerate(data.experiments):
        ax.scatter(e.ratio, e.lamport_lead, s=20, alpha=0.75, color=f"C{k % 10}", marker="o",
                   label=f"{e.name}: Lamport")  # fmt: skip
        ax.scatter(e.ratio, e.hlc_lead, s=24, alpha=0.9, color=f"C{k % 10}", marker="^",
                   edgecolors="black", linewidths=0.5, label=f"{e.name}: HLC l − pt")  # fmt: skip
    if np.isfinite(data.epsilon):
        ax.axhline(data.epsilon, color="0.3", lw=1, ls="--", label=f"ε = {data.epsilon:g} s")
    linear_below = data.epsilon if np.isfinite(data.epsilon) and data.epsilon > 0 else 1e-3
    ax.set_yscale("symlog", linthresh=linear_below)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="fastest rate / the VM's own", ylabel="largest lead over physical time (s)",
           title="how far each clock runs ahead")  # fmt: skip
    ax.legend(fontsize="x-small")


def plot_hlc_counter(ax: Axes, data: ClockComparison) -> None:
    """Each trial's largest HLC counter beside its bound N·(ε + 1)."""
    from matplotlib.ticker import MaxNLocator  # as Axes: matplotlib only once a figure is drawn

    start = 0
    for k, e in enumerate(data.experiments):
        x = np.arange(start, start + len(e.counter))
        ax.scatter(x, np.maximum(e.counter, 0.5), s=22, color=f"C{k % 10}", label=f"{e.name}: c")
        ax.scatter(x, e.bound, s=200, color=f"C{k % 10}", marker="_", label=f"{e.name}: bound")
        start += len(e.counter)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel="HLC counter (0 drawn at 0.5)",
           title="HLC's largest c against N·(ε + 1)")  # fmt: skip
    ax.legend(fontsize="x-small")


def plot_bloom_fp(ax: Axes, data: ClockComparison) -> None:
    """The Bloom clock's false-positive rate per VM-trial, against the rate ratio."""
    for k, e in enumerate(data.experiments):
        ax.scatter(e.ratio, e.bloom_fp, s=20, alpha=0.75, color=f"C{k % 10}", label=e.name)
    ax.set(ylim=(-0.02, 1.02), xlabel="fastest rate / the VM's own",
           ylabel="concurrent pairs ordered",
           title="Bloom clock's false-positive rate")  # fmt: skip
    ax.legend(fontsize="x-small")
