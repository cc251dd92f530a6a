"""Experiments summarised and set side by side: one observation per VM per trial."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.columns import Floats
from analysis.metrics.stats import Correlation, maximum, mean, spearman
from analysis.metrics.trial import TrialMetrics


@dataclass(frozen=True, slots=True)
class ExperimentSummary:
    name: str
    trials: tuple[TrialMetrics, ...]
    rate_low: float
    rate_high: float
    jump_mean: float  # mean over VM-trials of each one's mean jump
    jump_p95: float
    jump_max: float
    queue_mean: float
    queue_max: float
    unbounded_queues: int  # VM-trials whose queue grew without bound
    lag_mean: float
    lag_max: float
    lag_slope: float
    internal_share: float  # of all ticks of the experiment
    send_share: float
    receive_share: float
    rate_error: float  # worst |achieved - configured| / configured
    rate_vs_jump: Correlation
    rate_vs_queue: Correlation
    rate_vs_lag: Correlation

    def column(self, attr: str) -> Floats:
        """One number per VM-trial."""
        return vm_values(self.trials, attr)

    def to_dict(self) -> dict[str, Any]:
        raw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        raw["trials"] = [t.name for t in self.trials]
        for key in ("rate_vs_jump", "rate_vs_queue", "rate_vs_lag"):
            raw[key] = dataclasses.asdict(raw[key])
        return raw


def vm_values(trials: Iterable[TrialMetrics], attr: str) -> Floats:
    """An attribute of every VM of every trial, as floats."""
    return np.array([float(getattr(vm, attr)) for t in trials for vm in t.vms], dtype=np.float64)


def group(trials: Iterable[TrialMetrics]) -> dict[str, list[TrialMetrics]]:
    """Trials by experiment, in the order experiments first appear."""
    groups: dict[str, list[TrialMetrics]] = {}
    for trial in trials:
        groups.setdefault(trial.experiment, []).append(trial)
    return groups


def summarize(name: str, trials: list[TrialMetrics]) -> ExperimentSummary:
    vms = [vm for trial in trials for vm in trial.vms]

    def column(attr: str) -> Floats:
        return vm_values(trials, attr)

    rates = column("rate")
    ticks = sum(vm.ticks for vm in vms)

    def share(attr: str) -> float:
        return sum(getattr(vm, attr) for vm in vms) / ticks if ticks else float("nan")

    errors = np.abs(column("achieved") - rates) / rates
    return ExperimentSummary(
        name=name,
        trials=tuple(trials),
        rate_low=float(np.nanmin(rates)) if len(rates) else float("nan"),
        rate_high=float(np.nanmax(rates)) if len(rates) else float("nan"),
        jump_mean=_nanmean(column("jump_mean")),
        jump_p95=_nanmean(column("jump_p95")),
        jump_max=maximum(column("jump_max")[~np.isnan(column("jump_max"))]),
        queue_mean=mean(column("queue_mean")),
        queue_max=maximum(column("queue_max")),
        unbounded_queues=sum(vm.queue_unbounded for vm in vms),
        lag_mean=_nanmean(column("lag_mean")),
        lag_max=maximum(column("lag_max")[~np.isnan(column("lag_max"))]),
        lag_slope=_nanmean(column("lag_slope")),
        internal_share=share("internal"),
        send_share=share("send"),
        receive_share=share("receive"),
        rate_error=maximum(errors[~np.isnan(errors)]),
        rate_vs_jump=spearman(rates, column("jump_mean")),
        rate_vs_queue=spearman(rates, column("queue_mean")),
        rate_vs_lag=spearman(rates, column("lag_mean")),
    )


def summarize_all(trials: Iterable[TrialMetrics]) -> list[ExperimentSummary]:
    return [summarize(name, group_) for name, group_ in group(trials).items()]


def _nanmean(values: Floats) -> float:
    return mean(values[~np.isnan(values)])
