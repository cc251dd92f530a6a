"""A sweep's results as files: the per-VM table (CSV, and Parquet) and the phase diagram.

<sweep>/vms.csv       one line per VM-trial: measured against predicted
<sweep>/vms.parquet   the same table, typed, for polars or pandas
<sweep>/phase.png     where queues grow, with the model's boundary
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import astuple, fields
from pathlib import Path

from analysis.metrics.sweep import SweepScores, VmRow, rows_under, scores
from analysis.report import figures, plots
from analysis.report.plot_inputs import phase_diagram

TABLE = "vms"
PHASE_DIAGRAM = "phase.png"
PHASE_SIZE = (7.5, 4.2)


def write_results(
    trials_root: Path, sweep_dir: Path, known: Mapping[Path, list[VmRow]] | None = None
) -> SweepScores:
    """vms.csv, vms.parquet and phase.png in `sweep_dir` from every completed trial under
    `trials_root` (those in `known` by their rows there); returns the model's scores."""
    rows = rows_under(trials_root, known)
    write_csv(rows, sweep_dir / f"{TABLE}.csv")
    write_parquet(rows, sweep_dir / f"{TABLE}.parquet")
    if rows:
        png = figures.single(plots.plot_phase_diagram, phase_diagram(rows), size=PHASE_SIZE)
        (sweep_dir / PHASE_DIAGRAM).write_bytes(png)
    return scores(rows)


def write_csv(rows: Sequence[VmRow], path: Path) -> None:
    """The table as CSV, one VM-trial a line, a header first."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([field.name for field in fields(VmRow)])
        writer.writerows(astuple(row) for row in rows)


def write_parquet(rows: Sequence[VmRow], path: Path) -> None:
    """The table as Parquet, its column types taken from VmRow (so an empty table has them)."""
    import polars as pl  # the lab extra's data layer; only this file format needs it

    dtypes = {"str": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}
    schema = {f.name: dtypes[str(f.type)] for f in fields(VmRow)}
    columns = {name: [getattr(row, name) for row in rows] for name in schema}
    pl.DataFrame(columns, schema=schema).write_parquet(path)
