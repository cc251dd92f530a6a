"""The report of a sweep directory: the model's scores, the phase diagram, and every cell.

A sweep holds hundreds of trials: the page summarises them per cell instead of
drawing every trial's figures (`clocklab report <sweep>/trials/<cell>` does that).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from pathlib import Path

from analysis.metrics.sweep import VmRow, rows_under, scores
from analysis.report import figures, plots
from analysis.report.markup import CSS, Gallery, num, percent, table, text
from analysis.report.plot_inputs import phase_diagram, sweep_fits
from analysis.report.sweep_table import PHASE_SIZE

SUMMARY = "sweep.json"


def is_sweep(path: Path) -> bool:
    return (path / SUMMARY).is_file() and (path / "trials").is_dir()


def render_sweep(sweep_dir: Path, when: dt.datetime, gallery: Gallery) -> str:
    summary = json.loads((sweep_dir / SUMMARY).read_text(encoding="utf-8"))
    rows = rows_under(sweep_dir / "trials")
    s = scores(rows)
    cards = [
        (num(len({(r.cell, r.trial) for r in rows})), "trials"),
        (f"{s.share_error:.3f}", "mean |predicted − measured| receive share"),
        (f"{s.clear_right}/{s.clear}", "clear-cut queues whose growth the model called"),
        (_rate_error(summary.get("worst_rate_error", math.nan)), "worst VM rate error"),
        (
            f"{summary.get('vms_beyond_tolerance', '–')}/{summary.get('vm_rate_errors', '–')}",
            f"VMs beyond {_rate_error(summary.get('rate_tolerance', math.nan))} of their rate",
        ),
    ]
    body = [
        f"<h1>clocklab sweep <code>{text(summary.get('experiment', sweep_dir.name))}</code></h1>",
        f'<p class="subtitle">{len(summary.get("cells", []))} cells from '
        f"<code>{text(sweep_dir)}</code>, {num(summary.get('duration', float('nan')))} simulated s "
        f"per trial at time scale {num(summary.get('time_scale', float('nan')))}, "
        f"{num(summary.get('concurrency', float('nan')))} at once · generated "
        f"{when:%Y-%m-%d %H:%M} UTC</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{n}</b>{text(label)}</div>' for n, label in cards)
        + "</div>",
    ]
    if rows:
        body += [
            gallery.figure(
                "sweep-phase",
                figures.single(plots.plot_phase_diagram, phase_diagram(rows), size=PHASE_SIZE),
                "where queues grow",
                "Colour: the measured share of VMs whose queue grew, over the trials' slowest / "
                "fastest configured rate and event range. Lines: the queueing model's boundary; "
                "left of it the slow VMs' queues grow (solid: one slow VM among fast ones, "
                "dashed: one fast VM among slow ones).",
            ),
            gallery.figure(
                "sweep-model-fit",
                figures.grid(plots.plot_model_fit, sweep_fits(rows), columns=2),
                "the model against the measurement",
                "Each dot is one VM in one trial of the sweep; on the diagonal the model is exact.",
            ),
            "<h2>Cells</h2>",
            _cells(rows),
        ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>clocklab sweep</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def _cells(rows: list[VmRow]) -> str:
    by_cell: defaultdict[str, list[VmRow]] = defaultdict(list)
    for r in rows:
        by_cell[r.cell].append(r)
    lines = []
    for cell, members in by_cell.items():
        s = scores(members)
        lines.append(
            [
                text(cell),
                num(len({r.trial for r in members})),
                num(members[0].event_range),
                num(min(r.slowest_over_fastest for r in members), 2),
                percent(sum(r.queue_grows for r in members) / len(members)),
                percent(sum(r.predicted_queue_grows for r in members) / len(members)),
                num(s.share_error, 3),
                _rate_error(max(abs(r.rate_error) for r in members)),
            ]
        )
    headers = ["cell", "trials", "event range", "lowest slowest/fastest", "queues grew",
               "predicted to grow", "mean |Δ receive share|", "worst rate error"]  # fmt: skip
    return table(headers, lines)


def _rate_error(value: float) -> str:
    """|achieved / configured - 1|: hundredths of a percent matter here."""
    return "–" if math.isnan(value) else f"{value:.4%}"
