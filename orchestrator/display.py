"""What the user sees: a live progress bar while a trial runs, notices, a summary table after.

The one place that renders the events trials, backends and the image build report.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.events import Event, Level, Notice, Phase, TrialProgress
from orchestrator.monitor import VmProgress
from orchestrator.plan import TrialPlan


class LiveDisplay:
    """Simulated seconds elapsed of the trial's duration, and each VM's ticks.

    With `trials`, one more bar follows the whole series of trials.
    """

    def __init__(self, console: Console, trials: int | None = None) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._trial: int | None = None
        self._trials = trials
        self._overall: TaskID | None = None

    def __enter__(self) -> LiveDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            style = "yellow" if event.level is Level.WARNING else "dim"
            self.console.print(f"[{style}]{event.text}[/]", highlight=False)
        else:
            self._update(event)

    def _update(self, event: TrialProgress) -> None:
        plan, progress, phase = event.plan, event.vms, event.phase
        e = plan.experiment
        if self._trials and self._overall is None:
            total = self._trials * e.duration
            self._overall = self._progress.add_task(f"{e.name} trials", total=total, detail="")
        if self._trial != plan.trial:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._trial = plan.trial
            self._task = self._progress.add_task(
                f"{e.name} trial {plan.trial}", total=e.duration, detail=""
            )
        assert self._task is not None
        starts = [p.start_at for p in progress.values() if p.start_at]
        elapsed = (time.time() - max(starts)) * e.time_scale if starts else 0.0
        ticks = " ".join(f"vm{i}:{p.ticks}" for i, p in progress.items())
        if len(progress) > 8:
            ticks = f"{sum(p.ticks for p in progress.values())} ticks"
        ready = sum(p.ready for p in progress.values())
        detail = f"{ready}/{len(progress)} ready" if phase is Phase.STARTING else ticks
        elapsed = min(max(elapsed, 0.0), e.duration)
        self._progress.update(self._task, completed=elapsed, detail=detail)
        if self._overall is not None and self._trials:
            done = (plan.trial - 1) * e.duration + elapsed
            detail = f"trial {plan.trial} of {self._trials}"
            self._progress.update(self._overall, completed=done, detail=detail)


def summary_table(plan: TrialPlan, progress: dict[int, VmProgress]) -> Table:
    table = Table(title=f"{plan.experiment.name} trial {plan.trial}", title_justify="left")
    for column in ("vm", "rate", "achieved", "ticks", "sent", "received", "queued", "lamport"):
        table.add_column(column, justify="right")
    for vm, p in progress.items():
        stop: dict[str, Any] = p.stop or {}
        achieved = stop.get("rate_achieved")
        table.add_row(
            f"vm{vm}",
            f"{plan.rates[vm]:g}",
            f"{achieved:.4f}" if achieved else "-",
            str(stop.get("ticks", p.ticks)),
            str(stop.get("sent", "-")),
            str(stop.get("received", "-")),
            str(stop.get("queue_len", p.queue_len)),
            str(p.lamport),
        )
    return table
