"""11. Clocks over many trials: HLC near physical time, its counter, and the queueing model.

Simulated trials (vm_node/sim.py) of the shipped `original` and `variation`
experiments, each trial's rates drawn as its plan draws them, one VM's clock set
0.25 s ahead and another's 0.05 s behind (ε = 0.3 s). On each: the share of
events whose HLC stays within ε of physical time (l - pt <= ε), the largest
HLC counter beside its bound N·(ε + 1), and the queueing model's receive share
against the simulated one (mean absolute error over every VM-trial).
"""

from __future__ import annotations

import time

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
TIME_SCALE = 1.0
SHARE_MAE_TARGET = 0.02


def run(ctx: Context) -> Section:
    section = Section(
        NAME,
        TITLE,
        columns=(
            "experiment", "trials", "events", "within ε", "largest l - pt (s)", "largest c",
            "its bound", "model receive-share MAE",
        ),
    )  # fmt: skip
    started = time.perf_counter()
    within_all, events_all, errors_all = 0, 0, []
    for name in EXPERIMENTS:
        experiment, _ = load_experiment(name)
        clocks, errors = [], []
        for t in range(1, TRIALS[ctx.quick] + 1):
            spec = SyntheticRun(
                rates=draw_rates(experiment, t), duration=experiment.duration,
                time_scale=TIME_SCALE, event_range=experiment.event_range, seed=t, trial=t,
                experiment=name, clock_offsets=OFFSETS,
            )  # fmt: skip
            trial = load_trial(write_run(spec, ctx.work / NAME))
            clocks.append(TrialClocks.of(trial, Trace.from_trial(trial)))
            metrics = trial_metrics(trial, traces(trial))
            errors += [
                abs(m.receive_share - vm.share(vm.receive))
                for vm in metrics.vms
                if (m := metrics.predicted(vm.vm)) is not None
            ]
        events = sum(c.events for c in clocks)
        within = events - sum(c.beyond_epsilon for c in clocks)
        worst = max(clocks, key=lambda c: max(c.hlc_c))
        section.add_row(
            name, len(clocks), events, f"{within / events:.2%}",
            max(max(c.hlc_lead) for c in clocks), max(worst.hlc_c), worst.counter_bound,
            float(np.mean(errors)),
        )  # fmt: skip
        within_all, events_all = within_all + within, events_all + events
        errors_all += errors
    share_mae = float(np.mean(errors_all))
    section.figures += [
        Figure(
            f"HLC within ε = {max(OFFSETS) - min(OFFSETS):g} s of physical time, every event",
            100 * within_all / events_all,
            "%",
            target=Target("at_least", 100.0, "%"),
        ),
        Figure(
            "queueing model vs simulated receive share, mean |error| per VM-trial",
            share_mae,
            "",
            target=Target("at_most", SHARE_MAE_TARGET, ""),
        ),
    ]
    section.data = {
        "events": events_all,
        "within_epsilon": within_all,
        "receive_share_mae": share_mae,
        "trials_per_experiment": TRIALS[ctx.quick],
    }
    section.notes.append(
        f"{TRIALS[ctx.quick]} trials per experiment at time scale {TIME_SCALE:g}, clock offsets "
        f"{OFFSETS} s; simulated, analysed and judged in {time.perf_counter() - started:.1f} s"
    )
    return section
