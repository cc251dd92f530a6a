"""The report's section on one experiment: verdicts, per-VM numbers, messages, figures."""

from __future__ import annotations

import math

from analysis.check.verdict import RULES, Verdict
from analysis.metrics.queueing import Prediction
from analysis.metrics.summaries import ExperimentSummary
from analysis.report import figures, plot_inputs, plots
from analysis.report.analyses import TrialAnalysis
from analysis.report.markup import Gallery, badge, num, percent, table, text

VERDICT_TONE = {Verdict.VALID: "good", Verdict.INVALID: "bad", Verdict.UNKNOWN: "meh"}


def experiment_section(
    summary: ExperimentSummary, analyses: list[TrialAnalysis], gallery: Gallery
) -> str:
    trials = [a.traces for a in analyses]
    first = analyses[0]
    name = summary.name
    parts = [
        f"<h2>Experiment <code>{text(summary.name)}</code></h2>",
        f'<p class="note">{len(analyses)} trial(s); configured rates {num(summary.rate_low)}–'
        f"{num(summary.rate_high)} ticks per simulated second.</p>",
        "<h3>Verdicts</h3>",
        _verdicts(analyses),
        "<h3>Clock offsets</h3>",
        _offsets(analyses),
        "<h3>Per VM</h3>",
        _vm_table(analyses),
        "<h3>Drift between pairs of VMs</h3>",
        _pairs(analyses),
        "<h3>Messages</h3>",
        _messages(analyses),
        "<h3>Figures</h3>",
        gallery.figure(
            f"{name}-clocks",
            figures.grid(plots.plot_clocks, trials),
            "logical clock over time",
            "Lamport clock of every VM over simulated time, one panel per trial. Lines that "
            "stay together mean the VMs' messages keep their clocks in step; shaded bands are "
            "injected faults.",
        ),
        gallery.figure(
            f"{name}-zoom",
            figures.single(plots.plot_vm_zoom, plot_inputs.zoom(first.traces)),
            "one VM close up",
            "The slowest VM of the first trial, tick by tick, around its largest jump: internal "
            "events and sends step by one, a receive leaps to the sender's clock plus one.",
        ),
        gallery.figure(
            f"{name}-events",
            figures.grid(plots.plot_event_counts, [a.metrics for a in analyses]),
            "event counts",
            "What each VM did with its ticks. Slow VMs spend more ticks receiving because "
            "messages pile up faster than they can take them.",
        ),
        gallery.figure(
            f"{name}-queues",
            figures.grid(plots.plot_queues, trials),
            "queue length over time",
            "Messages waiting in each VM's inbox after each tick. A line that keeps rising "
            "is a VM that cannot keep up.",
        ),
        gallery.figure(
            f"{name}-drift",
            figures.grid(plots.plot_drift, trials),
            "drift over time",
            "How far each VM's clock trails the fastest VM's. Flat lines mean the gap stays "
            "bounded; a slope means the gap grows.",
        ),
        gallery.figure(
            f"{name}-jumps",
            figures.single(
                plots.plot_jump_histograms, plot_inputs.jumps_by_rate(summary.name, trials)
            ),
            "jump histograms by clock rate",
            "How big receive jumps are, for VMs of each clock rate, over all trials "
            "(log scale: rare big jumps stay visible).",
        ),
        gallery.figure(
            f"{name}-space-time",
            figures.single(plots.plot_space_time, first.window, size=(11, 3.2)),
            "space-time diagram",
            "A window of the first trial: each event on its VM's lane in time order, labelled "
            "with its Lamport clock; each message sent and received inside the window is an "
            "arrow from its send to its receive, which always carries a larger clock.",
        ),
    ]
    return "\n".join(parts)


def _verdicts(analyses: list[TrialAnalysis]) -> str:
    rows = []
    details = []
    for a in analyses:
        c = a.check
        rows.append(
            [
                text(c.trial),
                badge(c.verdict.value, VERDICT_TONE[c.verdict]),
                num(c.lines),
                num(c.messages),
                text(", ".join(f"{rule.value} ×{n}" for rule, n in c.counts) or "–"),
                text("; ".join(c.incomplete) or "–"),
            ]
        )
        if c.examples:
            lines = "\n".join(f"[{v.rule.value}] {v}" for v in c.examples)
            rules = "".join(
                f"<li><code>{r.value}</code>: {text(RULES[r])}</li>" for r, _ in c.counts
            )
            details.append(
                f"<details><summary>{text(c.trial)}: counter-examples</summary><ul>{rules}</ul>"
                f"<pre>{text(lines)}</pre></details>"
            )
    headers = ["trial", "verdict", "lines", "messages", "violations", "incomplete because"]
    return table(headers, rows, text_columns=1) + "".join(details)


def _offsets(analyses: list[TrialAnalysis]) -> str:
    rows = []
    for a in analyses:
        o = a.offsets
        measured = {(m.node, m.phase): m for m in o.measured}
        for vm in range(len(o.configured)):
            node = o.nodes[o.node_of[vm]]
            reads = [measured.get((node, phase)) for phase in ("start", "end")]
            rows.append(
                [
                    text(a.check.trial),
                    f"vm{vm}",
                    text(node),
                    _ms(o.configured[vm] - o.configured[0]),
                    f"{_ms(o.vms.low[0, vm])} … {_ms(o.vms.high[0, vm])}",
                    " / ".join(
                        f"{_ms(m.offset)} ± {_ms(m.uncertainty)}" if m else "–" for m in reads
                    ),
                ]
            )
    headers = [
        "trial",
        "VM",
        "node",
        "configured ahead of vm0 (ms)",
        "logs allow (ms)",
        "node clock at start / end (ms)",
    ]
    note = (
        "<p class=\"note\">How far each VM's clock is ahead of vm0's: as configured "
        "(<code>skew:</code>), and the interval its messages with vm0 allow (a message is "
        "never received before it is sent). The node's clock is the orchestrator's read of "
        "the host the VM ran on, ± half the read's round trip.</p>"
    )
    return table(headers, rows, text_columns=3) + note


def _ms(seconds: float) -> str:
    return "–" if math.isinf(seconds) else f"{seconds * 1000:,.3f}"


def _vm_table(analyses: list[TrialAnalysis]) -> str:
    rows = []
    for a in analyses:
        m = a.metrics
        for vm in m.vms:
            queue = num(vm.queue_max) + (" " + badge("grows", "bad") if vm.queue_unbounded else "")
            model = m.predicted(vm.vm)
            rows.append(
                [
                    text(m.trial),
                    text(f"vm{vm.vm}"),
                    num(vm.rate),
                    num(vm.achieved, 3),
                    num(vm.ticks),
                    percent(vm.share(vm.internal)),
                    percent(vm.share(vm.send)),
                    percent(vm.share(vm.receive)),
                    percent(model.receive_share) if model else "–",
                    num(vm.jump_mean),
                    num(vm.jump_p95),
                    num(vm.jump_max),
                    num(vm.queue_mean),
                    queue,
                    num(vm.queue_final),
                    _model_growth(model),
                    num(vm.lag_mean),
                    num(vm.lag_max),
                    num(vm.lag_slope, 3),
                    num(vm.late_ticks),
                ]
            )
    headers = [
        "trial",
        "vm",
        "rate",
        "achieved",
        "ticks",
        "internal",
        "send",
        "receive",
        "model receive",
        "jump mean",
        "jump p95",
        "jump max",
        "queue mean",
        "queue max",
        "queue final",
        "model growth /s",
        "lag mean",
        "lag max",
        "lag /s",
        "late ticks",
    ]
    return (
        table(headers, rows, text_columns=2)
        + '<p class="note">Rates in ticks per simulated second. Lag is measured against the VM '
        "with the highest configured rate; “lag /s” is how fast it grows. A queue marked "
        "“grows” could not keep up: in the second half of the run its VM spent nearly every tick "
        "receiving, and the queue still rose. Late ticks ran a full period or more behind "
        "schedule. The model columns are the queueing model's prediction from the rates, "
        "event range and duration alone.</p>"
    )


def _model_growth(model: Prediction | None) -> str:
    if model is None:
        return "–"
    return num(model.queue_growth, 2) if model.queue_grows else "stable"


def _pairs(analyses: list[TrialAnalysis]) -> str:
    rows = [
        [text(a.metrics.trial), text(f"vm{p.a} − vm{p.b}"), num(p.max_abs), num(p.final),
         num(p.slope, 3)]
        for a in analyses
        for p in a.metrics.pairs
    ]  # fmt: skip
    return table(["trial", "clocks", "largest |difference|", "final", "growth /s"], rows, 2) + (
        '<p class="note">The difference of two VMs\' Lamport clocks over the run; growth is its '
        "least-squares slope per simulated second (0: the pair keeps in step).</p>"
    )


def _messages(analyses: list[TrialAnalysis]) -> str:
    rows = []
    for a in analyses:
        acc = a.metrics.accounting
        ok = (
            badge("every msg_id accounted for", "good")
            if acc.balanced
            else badge("unbalanced", "bad")
        )
        rows.append(
            [
                text(a.metrics.name),
                num(acc.sent),
                num(acc.received),
                num(acc.failed),
                num(acc.dropped),
                num(acc.queued),
                num(acc.lost),
                num(acc.vanished),
                num(acc.duplicated),
                num(acc.unknown),
                ok,
            ]
        )
    headers = [
        "trial",
        "sent",
        "received",
        "send failed",
        "dropped by loss",
        "still queued",
        "lost in a crash",
        "vanished",
        "duplicated",
        "never sent",
        "balance",
    ]
    return table(headers, rows)
