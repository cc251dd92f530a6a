"""Numbers per VM and per trial: rates, event shares, jumps, queues and drift."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.check.accounting import Accounting, account
from analysis.columns import INTERNAL, RECEIVE, SEND, TrialLog
from analysis.metrics.queueing import Prediction, predict
from analysis.metrics.stats import maximum, mean, percentile, residual_spread, slope
from analysis.metrics.traces import TrialTraces, VmTrace

# A queue "grows without bound" when, over the second half of the run, the VM
# spends nearly every tick receiving and the queue's trend still adds a few
# messages: it cannot keep up with what arrives.
SATURATED_SHARE = 0.95
GROWTH = 3.0  # messages the trend adds over the second half


@dataclass(frozen=True, slots=True)
class VmMetrics:
    vm: int
    rate: float  # configured, ticks per simulated second
    achieved: float  # least-squares fit of tick times, ticks per simulated second
    ticks: int
    internal: int
    send: int
    receive: int
    late_ticks: int  # ticks that ran a period or more behind schedule
    tick_jitter: float  # real seconds: spread of tick times about their fitted line
    jump_mean: float  # logical clock jump on receives
    jump_p95: float
    jump_max: float
    queue_mean: float  # inbox length after each tick
    queue_max: int
    queue_final: int
    queue_unbounded: bool
    lag_mean: float  # fastest VM's Lamport clock minus this one's
    lag_max: float
    lag_final: float
    lag_slope: float  # growth of the lag, clock units per simulated second
    lamport_final: int
    incarnations: int

    def share(self, count: int) -> float:
        return count / self.ticks if self.ticks else float("nan")


@dataclass(frozen=True, slots=True)
class PairDrift:
    """Lamport clock of VM a minus VM b over the run."""

    a: int
    b: int
    max_abs: float
    final: float
    slope: float  # clock units per simulated second


@dataclass(frozen=True, slots=True)
class TrialMetrics:
    experiment: str
    trial: int
    path: Path
    duration: float  # simulated seconds
    fastest: int  # the VM the lags are measured against
    vms: tuple[VmMetrics, ...]
    pairs: tuple[PairDrift, ...]
    accounting: Accounting
    predictions: tuple[Prediction, ...] = ()  # the queueing model's, one per VM; () if unknown
    seed: int | None = None  # the experiment's, as the manifest says: with `trial`, the plan's
    backend: str | None = None  # where it ran, as the manifest says

    @property
    def name(self) -> str:
        return f"{self.experiment}/trial-{self.trial}"

    def predicted(self, vm: int) -> Prediction | None:
        return next((p for p in self.predictions if p.vm == vm), None)

    def to_dict(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw["path"] = str(self.path)
        del raw["predictions"]
        for vm, out in zip(self.vms, raw["vms"], strict=True):
            out["receive_share"] = vm.share(vm.receive)
            out["send_share"] = vm.share(vm.send)
            prediction = self.predicted(vm.vm)
            out["predicted"] = prediction.to_dict() if prediction else None
        return raw


def trial_metrics(trial: TrialLog, traces: TrialTraces) -> TrialMetrics:
    """Every per-VM and per-pair number of one trial."""
    fastest = traces.fastest
    clocks = traces.clocks.astype(np.float64)
    vms = tuple(_vm_metrics(trial, t, traces, clocks[fastest] - clocks[t.vm]) for t in traces.vms)
    pairs = tuple(
        _pair(traces, a, b, clocks[a] - clocks[b])
        for a in range(len(traces.vms))
        for b in range(a + 1, len(traces.vms))
    )
    return TrialMetrics(
        experiment=traces.experiment,
        trial=traces.trial,
        path=trial.path,
        duration=traces.duration,
        fastest=fastest,
        vms=vms,
        pairs=pairs,
        accounting=account(trial),
        predictions=_predictions(trial, vms),
        seed=trial.manifest.seed,
        backend=trial.manifest.backend,
    )


def _predictions(trial: TrialLog, vms: tuple[VmMetrics, ...]) -> tuple[Prediction, ...]:
    """The model's view of the trial as configured: its rates, event range and duration."""
    configs = [f.config for f in trial.files if f.config is not None]
    event_range = next((c.event_range for c in configs if c.event_range), None)
    duration = next((c.duration for c in configs if c.duration > 0), trial.manifest.duration)
    rates = [vm.rate for vm in vms]
    if not event_range or not duration or not all(r > 0 for r in rates):  # nan fails too
        return ()
    if [vm.vm for vm in vms] != list(range(len(vms))):
        return ()  # the model numbers VMs 0..N-1: a VM with no log leaves it nothing to match
    return predict(rates, event_range, duration)


def _vm_metrics(trial: TrialLog, t: VmTrace, traces: TrialTraces, lag: Any) -> VmMetrics:
    time_scale = trial.time_scale
    origin = t.timestamp[0] if len(t.timestamp) else 0.0  # small numbers fit precisely
    ticks = t.tick.astype(np.float64)
    seconds_per_tick = slope(ticks, t.timestamp - origin)
    achieved = 1.0 / (seconds_per_tick * time_scale) if seconds_per_tick > 0 else float("nan")
    jumps = t.jumps.astype(np.float64)
    queue = t.queue.astype(np.float64)
    return VmMetrics(
        vm=t.vm,
        rate=t.rate,
        achieved=achieved,
        ticks=len(t.tick),
        internal=int(np.count_nonzero(t.event == INTERNAL)),
        send=int(np.count_nonzero(t.event == SEND)),
        receive=int(np.count_nonzero(t.event == RECEIVE)),
        late_ticks=int(np.count_nonzero(t.behind > 0)),
        # one incarnation: a restart begins a new line of ticks
        tick_jitter=residual_spread(ticks, t.timestamp - origin)
        if t.incarnations == 1
        else float("nan"),
        jump_mean=mean(jumps),
        jump_p95=percentile(jumps, 95),
        jump_max=maximum(jumps),
        queue_mean=mean(queue),
        queue_max=int(t.queue.max()) if len(t.queue) else 0,
        queue_final=_final_queue(trial, t),
        queue_unbounded=_unbounded(t, traces.duration),
        lag_mean=mean(lag),
        lag_max=maximum(lag),
        lag_final=float(lag[-1]) if len(lag) else float("nan"),
        lag_slope=slope(traces.grid, lag),
        lamport_final=int(t.lamport[-1]) if len(t.lamport) else 0,
        incarnations=t.incarnations,
    )


def _final_queue(trial: TrialLog, t: VmTrace) -> int:
    """What the VM's last incarnation left in its inbox."""
    files = [f for f in trial.files if f.vm == t.vm]
    if files and files[-1].totals is not None:
        return files[-1].totals.queue_len
    return int(t.queue[-1]) if len(t.queue) else 0


def _unbounded(t: VmTrace, duration: float) -> bool:
    late = t.time >= duration / 2
    if np.count_nonzero(late) < 10:
        return False
    saturated = np.count_nonzero(t.event[late] == RECEIVE) >= SATURATED_SHARE * np.count_nonzero(
        late
    )
    growth = slope(t.time[late], t.queue[late].astype(np.float64)) * duration / 2
    return bool(saturated and growth >= GROWTH)


def _pair(traces: TrialTraces, a: int, b: int, difference: Any) -> PairDrift:
    return PairDrift(
        a=a,
        b=b,
        max_abs=maximum(np.abs(difference)),
        final=float(difference[-1]) if len(difference) else float("nan"),
        slope=slope(traces.grid, difference),
    )
