"""11. Clocks over many trials: HLC near physical time, its counter, and the queueing model.

Simulated trials (vm_node/sim/) of the shipped `original` and `variation`
experiments, each trial's rates drawn as its plan draws them, one VM's clock set
0.25 s ahead and another's 0.05 s behind (ε = 0.3 s). On each: the share of
events whose HLC stays within ε of physical time (l - pt <= ε), the largest
HLC counter beside its bound N·(ε + 1), and the queueing model's receive share
against the simulated one (mean absolute error over every VM-trial). A VM of a
one-minute trial ticks a few hundred times, so its receive share alone varies
by a few hundredths from trial to trial: the model's error is also measured on
trials ten times as long, where that noise is a third as large.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.clocks import Trace
from analysis.clocks.claims import TrialClocks
from analysis.load.runs import load_trial
from analysis.metrics.traces import traces
from analysis.metrics.trial import trial_metrics
from bench.context import Context
from bench.report import Figure, Section, Target
from orchestrator.experiment import load_experiment
from orchestrator.plan import draw_rates
from vm_node.sim import SyntheticRun, write_run

NAME = "clocks"
TITLE = "Clocks and the model over many simulated trials"
TRIALS = {False: 30, True: 5}
EXPERIMENTS = ("original", "variation")
OFFSETS = (0.0, 0.25, -0.05)  # seconds per VM: ε = 0.3 s
TIME_SCALE = 10.0
LONGER = 10  # the model's error is also measured on trials this many times as long
SHARE_MAE_TARGET = 0.02


@dataclass(frozen=True, slots=True)
class Experiment:
    """What one experiment's simulated trials gave."""

    clocks: list[TrialClocks]
    share_errors: list[float]  # |predicted - measured| receive share, per VM-trial

    @property
    def events(self) -> int:
        return sum(c.events for c in self.clocks)

    @property
    def within(self) -> int:
        return self.events - sum(c.beyond_epsilon for c in self.clocks)


def simulate(name: str, trials: int, root: Path, longer: int = 1) -> Experiment:
    experiment, _ = load_experiment(name)
    clocks, errors = [], []
    for t in range(1, trials + 1):
        spec = SyntheticRun(
            rates=draw_rates(experiment, t), duration=experiment.duration * longer,
            time_scale=TIME_SCALE, event_range=experiment.event_range, seed=t, trial=t,
            experiment=name, clock_offsets=OFFSETS,
        )  # fmt: skip
        trial = load_trial(write_run(spec, root))
        clocks.append(TrialClocks.of(trial, Trace.from_trial(trial)))
        metrics = trial_metrics(trial, traces(trial))
        errors += [
            abs(m.receive_share - vm.share(vm.receive))
            for vm in metrics.vms
            if (m := metrics.predicted(vm.vm)) is not None
        ]
    return Experiment(clocks, errors)


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "experiment", "trials", "events", "within ε", "largest l - pt (s)", "largest c",
            "its bound", "model receive-share MAE", f"same, {LONGER}x as long",
        ),
    )  # fmt: skip
    started = time.perf_counter()
    trials = TRIALS[ctx.quick]
    done = {name: simulate(name, trials, ctx.work / NAME) for name in EXPERIMENTS}
    longer = {name: simulate(name, trials, ctx.work / f"{NAME}-long", LONGER) for name in done}
    for name, e in done.items():
        worst = max(e.clocks, key=lambda c: max(c.hlc_c))
        section.add_row(
            name, trials, e.events, f"{e.within / e.events:.2%}",
            max(max(c.hlc_lead) for c in e.clocks), max(worst.hlc_c), worst.counter_bound,
            float(np.mean(e.share_errors)), float(np.mean(longer[name].share_errors)),
        )  # fmt: skip
    events = sum(e.events for e in done.values())
    within = sum(e.within for e in done.values())
    mae = float(np.mean([x for e in done.values() for x in e.share_errors]))
    mae_longer = float(np.mean([x for e in longer.values() for x in e.share_errors]))
    section.figures += [
        Figure(
            f"HLC within ε = {max(OFFSETS) - min(OFFSETS):g} s of physical time, every event",
            100 * within / events,
            "%",
            target=Target("at_least", 100.0, "%"),
        ),
        Figure(
            f"queueing model vs simulated receive share, mean abs. error, {LONGER}-minute trials",
            mae_longer,
            "",
            reference=mae,
            reference_name="the same on one-minute trials",
            ratio_of="none",
            target=Target("at_most", SHARE_MAE_TARGET, ""),
        ),
    ]
    section.data = {
        "events": events,
        "within_epsilon": within,
        "receive_share_mae": mae,
        "receive_share_mae_longer": mae_longer,
        "trials_per_experiment": trials,
    }
    section.notes.append(
        f"{trials} trials per experiment at time scale {TIME_SCALE:g}, clock offsets {OFFSETS} s; "
        f"simulated, analysed and judged in {time.perf_counter() - started:.1f} s"
    )
    return section
