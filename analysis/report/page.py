"""The HTML report: one self-contained file a newcomer can read without the code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from analysis.check.verdict import Verdict
from analysis.clocks.claims import TrialClocks, judge_clocks
from analysis.metrics.claims import Claim, Support, judge
from analysis.metrics.realism import compare_backends
from analysis.metrics.summaries import ExperimentSummary, group, summarize
from analysis.report import figures, plot_inputs, plots
from analysis.report.analyses import TrialAnalysis, analyze
from analysis.report.experiment import experiment_section
from analysis.report.markup import CSS, Gallery, badge, num, percent, table, text

SUPPORT_TONE = {
    Support.SUPPORTED: "good",
    Support.PARTLY: "meh",
    Support.CONTRADICTED: "bad",
    Support.INCONCLUSIVE: "none",
    Support.UNTESTED: "none",
}


def write_report(
    paths: Sequence[Path],
    output: Path,
    *,
    skew: float | None = None,
    gallery: Gallery | None = None,
) -> list[TrialAnalysis]:
    """Analyse every trial under `paths` and write the report to `output`.

    A single sweep directory gets the sweep's page instead (and no analyses back)."""
    from analysis.report.sweep_page import is_sweep, render_sweep

    if len(paths) == 1 and is_sweep(paths[0]):
        page = render_sweep(paths[0], dt.datetime.now(dt.UTC), gallery or Gallery())
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
        return []
    analyses = list(analyze(paths, skew=skew, clock_claims=True))
    page = render(analyses, paths, dt.datetime.now(dt.UTC), gallery or Gallery())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    return analyses


def render(
    analyses: Sequence[TrialAnalysis], sources: Sequence[Path], when: dt.datetime, gallery: Gallery
) -> str:
    by_experiment = group(a.metrics for a in analyses)
    summaries = [summarize(name, trials) for name, trials in by_experiment.items()]
    clock_trials = [a.clock_trial for a in analyses if a.clock_trial and a.clock_trial.events]
    realism = compare_backends([a.metrics for a in analyses])
    claims = judge(summaries) + judge_clocks(clock_trials) + ([realism.claim()] if realism else [])
    body = [
        "<h1>clocklab report</h1>",
        f'<p class="subtitle">{len(summaries)} experiment(s), {len(analyses)} trial(s) from '
        f"{', '.join(f'<code>{text(s)}</code>' for s in sources)} · generated "
        f"{when:%Y-%m-%d %H:%M} UTC</p>",
        _overview(analyses, claims),
        _glossary(),
        _conclusions(claims),
        _comparison(summaries, gallery),
        _clock_comparison(clock_trials, gallery),
        *(
            experiment_section(s, [a for a in analyses if a.metrics.experiment == s.name], gallery)
            for s in summaries
        ),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>clocklab report</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def _overview(analyses: Sequence[TrialAnalysis], claims: list[Claim]) -> str:
    verdicts = [a.check.verdict for a in analyses]
    cards = [
        (str(verdicts.count(Verdict.VALID)), "trials with valid clocks"),
        (str(verdicts.count(Verdict.INVALID)), "trials with violations"),
        (str(verdicts.count(Verdict.UNKNOWN)), "trials with incomplete logs"),
        (str(sum(c.support is Support.SUPPORTED for c in claims)), "claims supported"),
        (str(sum(c.support is Support.CONTRADICTED for c in claims)), "claims contradicted"),
    ]
    html = "".join(f'<div class="card"><b>{n}</b>{text(label)}</div>' for n, label in cards)
    return f'<div class="cards">{html}</div>'


def _glossary() -> str:
    terms = {
        "Tick": "one step of a VM's own clock. A VM at rate r ticks r times per simulated second, "
        "and on every tick does exactly one thing: receive one queued message, send, or an "
        "internal event.",
        "Lamport clock": "a counter every VM keeps. Internal events and sends add 1; a receive "
        "sets it to max(own, message's) + 1.",
        "Jump": "how much a receive moved the clock (after minus before). 1 means the message "
        "brought no news; a big jump means the sender was far ahead.",
        "Queue": "messages that arrived but wait for a tick. A VM that ticks slower than messages "
        "arrive builds a queue that only grows.",
        "Lag (drift)": "the fastest VM's Lamport clock minus this VM's, at each moment of true "
        "time (a VM's configured clock skew taken out). A slow VM keeps up only through the "
        "jumps its receives give it.",
        "Verdict": "valid: every line obeys the clock rules; invalid: some line breaks them (see "
        "the counter-examples); unknown: the logs are incomplete, or the trial did not complete, "
        "so they cannot be fully judged.",
        "Message fates": "every message sent is received, failed (send_failed), dropped by a loss "
        "condition, still queued at a clean stop, or lost with the inbox of a VM that was killed "
        "or with a killed sender, each shown by a log line. A message with none of these has "
        "vanished, and a copy no duplicate condition sent is a surplus: both make the verdict "
        "invalid.",
        "Simulated time": "experiments can run k times faster (time scale k); all times here are "
        "simulated seconds, as if the trial ran at its nominal pace.",
    }
    items = "".join(f"<dt>{text(t)}</dt><dd>{text(d)}</dd>" for t, d in terms.items())
    return (
        "<details open><summary>How to read this report</summary>"
        f'<dl class="glossary">{items}</dl></details>'
    )


def _conclusions(claims: list[Claim]) -> str:
    rows = [
        [
            text(c.statement),
            text(c.scope or "–"),
            badge(c.support.value, SUPPORT_TONE[c.support]),
            text(c.evidence),
        ]
        for c in claims
    ]
    return (
        "<h2>What the numbers say</h2>"
        '<p class="note">The classic exercise concluded that slower VMs make larger jumps, '
        "drift more, spend their ticks receiving and build longer queues, and that the variation "
        "(closer rates, more sends) makes smaller jumps and drift, sends and synchronises more "
        "and balances the queues. Each claim is tested here on one number per VM per trial "
        "(per trial for the balance of queues): Spearman's rank correlation with the clock rate "
        "(negative means slower VMs have more of it), or a permutation test between experiments. "
        "The queueing model's two claims compare its predictions with every VM-trial. "
        "The clocks' three claims run Lamport's clock and the Hybrid Logical Clock on every "
        "trial: whether HLC stays within ε of physical time (ε: how far the VMs' clocks may "
        "disagree: their configured skew on one node, measured across nodes), whether its "
        "counter stays within N·(ε + 1), and whether Lamport's lead grows with the rate ratio "
        "while HLC's does not. Where the report reads trials of a "
        "real backend and of the simulator, it says whether real sockets behave like the "
        "simulator on the same seeds: each VM against itself where trials share their plan, "
        "else the two distributions. Significant means p &lt; 0.05.</p>"
        + table(["claim", "tested on", "verdict", "evidence"], rows, text_columns=4)
    )


def _comparison(summaries: list[ExperimentSummary], gallery: Gallery) -> str:
    metrics: list[tuple[str, Callable[[ExperimentSummary], str]]] = [
        ("trials", lambda s: num(len(s.trials))),
        ("configured rates (ticks/s)", lambda s: f"{num(s.rate_low)}–{num(s.rate_high)}"),
        ("worst achieved-rate error", lambda s: percent(s.rate_error)),
        ("mean jump on receive", lambda s: num(s.jump_mean)),
        ("p95 jump (mean over VMs)", lambda s: num(s.jump_p95)),
        ("largest jump", lambda s: num(s.jump_max)),
        ("mean queue length", lambda s: num(s.queue_mean)),
        ("longest queue", lambda s: num(s.queue_max)),
        ("queues that grew without bound", lambda s: num(s.unbounded_queues)),
        ("mean lag behind the fastest VM", lambda s: num(s.lag_mean)),
        ("largest lag", lambda s: num(s.lag_max)),
        ("lag growth (per simulated s)", lambda s: num(s.lag_slope, 3)),
        ("internal share of ticks", lambda s: percent(s.internal_share)),
        ("send share", lambda s: percent(s.send_share)),
        ("receive share", lambda s: percent(s.receive_share)),
        ("rate vs mean jump", lambda s: text(s.rate_vs_jump)),
        ("rate vs mean queue", lambda s: text(s.rate_vs_queue)),
        ("rate vs mean lag", lambda s: text(s.rate_vs_lag)),
    ]
    rows = [[text(label), *(cell(s) for s in summaries)] for label, cell in metrics]
    effects = plot_inputs.rate_effects(summaries)
    png = figures.grid(plots.plot_rate_effect, effects, columns=3, cell=(4.2, 3.3))
    return (
        "<h2>Experiments side by side</h2>"
        '<p class="note">Means are over VMs and trials (one value per VM per trial). ρ is '
        "Spearman's rank correlation of a VM's configured rate with the number, p its "
        "permutation p-value.</p>"
        + table(["", *(s.name for s in summaries)], rows)
        + gallery.figure(
            "rate-effects",
            png,
            "rate against jump, queue and lag",
            "Each dot is one VM in one trial. A downward slope means slower VMs have more of "
            "it: bigger jumps, longer queues, more lag.",
        )
        + gallery.figure(
            "model-fit",
            figures.grid(plots.plot_model_fit, plot_inputs.model_fits(summaries), columns=2),
            "the queueing model against the measurement",
            "Each dot is one VM in one trial: the receive share and queue growth the model "
            "predicts from the rates, event range and duration alone, against what the VM did. "
            "Measured growth is the final queue over the trial's duration. On the dashed "
            "diagonal the model is exact.",
        )
    )


def _clock_comparison(trials: Sequence[TrialClocks], gallery: Gallery) -> str:
    if not trials:
        return ""
    return (
        "<h2>Clocks side by side</h2>"
        "<p class=\"note\">Lamport's clock, read as a clock ticking at the VM's own rate, runs "
        "ahead of physical time by what messages pushed it; the Hybrid Logical Clock (HLC) "
        "stays within ε of physical time, ε being how far the VMs' clocks disagree. A Bloom "
        "clock (16 counters) stands in for vector clocks and orders some concurrent events: "
        "its false-positive rate. <code>docs/clocks.md</code> explains each figure.</p>"
        + gallery.figure(
            "clock-comparison",
            figures.panels(
                [plots.plot_clock_leads, plots.plot_hlc_counter, plots.plot_bloom_fp],
                plot_inputs.clock_comparison(trials),
            ),
            "Lamport's lead beside HLC's, HLC's counter against its bound, Bloom false positives",
            "Left: each VM in each trial, its largest lead over its own physical clock against "
            "how much faster the fastest VM ticks (circles Lamport, triangles HLC; dashed: the "
            "largest ε). Middle: each trial's largest HLC counter and its bound N·(ε + 1), ε in "
            "microseconds. Right: the share of concurrent pairs the Bloom clock calls ordered.",
        )
    )
