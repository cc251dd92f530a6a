"""What `clocklab analyze` and `clocklab check` print."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

import numpy as np
from rich.console import Console
from rich.table import Table

from analysis.check.verdict import RULES, CheckResult, Verdict
from analysis.clocks import Figures
from analysis.metrics.claims import Claim
from analysis.metrics.queueing import Prediction
from analysis.metrics.realism import Realism
from analysis.metrics.stats import mean
from analysis.metrics.summaries import ExperimentSummary
from analysis.metrics.trial import TrialMetrics
from analysis.report.markup import num, percent


def print_trial(console: Console, m: TrialMetrics, check: CheckResult) -> None:
    table = Table(
        title=f"{m.name} · {m.duration:.1f} simulated s · clocks {check.verdict.value}",
        title_justify="left",
    )
    for header in (
        "vm",
        "rate",
        "achieved",
        "ticks",
        "int/send/recv",
        "model recv",
        "jump mean/p95/max",
        "queue mean/max/final",
        "lag mean/max/final",
        "model queue",
    ):
        table.add_column(header, justify="left" if header == "vm" else "right")
    for vm in m.vms:
        shares = "/".join(percent(vm.share(n)) for n in (vm.internal, vm.send, vm.receive))
        grows = " grows" if vm.queue_unbounded else ""
        model = m.predicted(vm.vm)
        table.add_row(
            f"vm{vm.vm}",
            num(vm.rate),
            num(vm.achieved, 3),
            num(vm.ticks),
            shares,
            percent(model.receive_share) if model else "–",
            f"{num(vm.jump_mean)}/{num(vm.jump_p95)}/{num(vm.jump_max)}",
            f"{num(vm.queue_mean)}/{num(vm.queue_max)}/{num(vm.queue_final)}{grows}",
            f"{num(vm.lag_mean)}/{num(vm.lag_max)}/{num(vm.lag_final)}",
            _growth(model),
        )
    console.print(table)
    a = m.accounting
    balance = (
        "every msg_id accounted for"
        if a.balanced
        else f"UNBALANCED: {len(a.unexplained)} break(s), see clocklab check"
    )
    console.print(
        f"messages: sent {a.sent}, received {a.received} ({a.failed_delivered} despite a failure "
        f"report), send failed {a.failed}, dropped by loss {a.dropped}, still queued "
        f"{a.queued}, lost in a crash {a.lost}, vanished {a.vanished}, duplicated "
        f"{a.duplicated}, never sent {a.unknown} ({balance})",
        markup=False,
        soft_wrap=True,
    )
    drift = ", ".join(
        f"vm{p.a}-vm{p.b} max |Δ| {num(p.max_abs)} final {num(p.final)} slope {num(p.slope, 3)}/s"
        for p in m.pairs
    )
    console.print(f"drift: {drift or '–'}\n", markup=False, soft_wrap=True)


def print_clocks(console: Console, trial: str, clocks: Mapping[str, Figures]) -> None:
    """One row per VM, the figures of every clock asked for side by side (docs/clocks.md)."""
    table = Table(title=f"{trial} · clocks", title_justify="left")
    table.add_column("vm", justify="left")
    columns = [column for figures in clocks.values() for column in figures.columns.items()]
    for name, _ in columns:
        table.add_column(name, justify="right")
    vms = max((len(values) for _, values in columns), default=0)
    for vm in range(vms):
        table.add_row(f"vm{vm}", *(num(values[vm], 3) for _, values in columns))
    console.print(table)


def _growth(model: Prediction | None) -> str:
    """The model's queue growth in messages per second, and whether it grows at all."""
    if model is None:
        return "–"
    return f"+{num(model.queue_growth, 2)}/s" if model.queue_grows else "stable"


def print_experiments(
    console: Console, summaries: Sequence[ExperimentSummary], claims: list[Claim]
) -> None:
    table = Table(title="experiments", title_justify="left")
    table.add_column("")
    for s in summaries:
        table.add_column(s.name, justify="right")
    rows: list[tuple[str, Callable[[ExperimentSummary], str]]] = [
        ("trials", lambda s: num(len(s.trials))),
        ("rates", lambda s: f"{num(s.rate_low)}–{num(s.rate_high)}"),
        ("mean jump", lambda s: num(s.jump_mean)),
        ("mean queue", lambda s: num(s.queue_mean)),
        ("unbounded queues", lambda s: num(s.unbounded_queues)),
        ("mean lag", lambda s: num(s.lag_mean)),
        (
            "internal/send/recv",
            lambda s: "/".join(
                percent(x) for x in (s.internal_share, s.send_share, s.receive_share)
            ),
        ),
        ("rate vs jump", lambda s: str(s.rate_vs_jump)),
        ("rate vs queue", lambda s: str(s.rate_vs_queue)),
        ("rate vs lag", lambda s: str(s.rate_vs_lag)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(s) for s in summaries))
    console.print(table)
    for c in claims:
        scope = f" [{c.scope}]" if c.scope else ""
        line = f"{c.support.value:>18}: {c.statement}{scope} — {c.evidence}"
        console.print(line, markup=False, soft_wrap=True)


def print_realism(console: Console, realism: Realism) -> None:
    """Each figure, real beside simulated, and the verdict: where the network shows."""
    table = Table(title=f"{realism.real} vs {realism.sim}", title_justify="left")
    for header in ("figure (per VM-trial)", "real mean", "simulated mean", "test", "differs"):
        table.add_column(header, justify="left" if header.startswith("figure") else "right")
    for f in realism.figures:
        table.add_row(
            f.name,
            num(mean(f.real[~np.isnan(f.real)]), 3),
            num(mean(f.sim[~np.isnan(f.sim)]), 3),
            f"{f.method}: {f.test}",
            "yes" if f.differs else "no",
        )
    console.print(table)
    c = realism.claim()
    console.print(f"{c.support.value}: {c.statement} — {c.evidence}", markup=False, soft_wrap=True)


def print_checks(out: TextIO, results: Sequence[CheckResult]) -> Verdict:
    """One block per trial, then the overall verdict (which it returns)."""
    for r in results:
        size = f"{r.lines:,} lines, {r.messages:,} messages"
        if r.violations:
            size = f"{r.violations:,} violation(s) in {size}"
        print(f"{r.trial}: {r.verdict.value.upper()} ({size}, {r.path})", file=out)
        for rule, n in r.counts:
            print(f"  {rule.value} ×{n}: {RULES[rule]}", file=out)
            for v in r.examples:
                if v.rule is rule:
                    print(f"    {v}", file=out)
        for reason in r.incomplete:
            print(f"  incomplete: {reason}", file=out)
    verdict = Verdict.worst([r.verdict for r in results])
    tally = ", ".join(f"{sum(r.verdict is v for r in results)} {v.value}" for v in Verdict)
    print(f"verdict: {verdict.value} ({tally})", file=out)
    return verdict
