"""clocklab analysis: from a trial's JSON logs to numbers, a verdict, figures and a report.

A pipeline, one subpackage per step (imports run down this list, never up):

- columns.py: a loaded trial (`TrialLog`), numpy columns with a row per log
  line and the messages; what every step below reads;
- load/: find run directories (the layout is `vm_node.rundir`'s) and read every
  log line into those columns (runs.py): blocks of lines decoded by msgspec
  into Structs of the vocabulary (logfile.py, schema.py), bad lines
  quarantined with file, line and reason (reasons.py);
- check/: the verdict. clocks.py judges each VM's lines, messages.py matches
  every receive and failure to its send, accounting.py gives every msg_id one
  fate backed by a log line; verdict.py names the rules;
- metrics/: traces.py (ticks and clocks in simulated time), trial.py (rates,
  shares, jumps, queues, drift), summaries.py (experiments side by side),
  stats.py, claims.py (the exercise's conclusions tested);
- report/: analyses.py (load, check, measure each trial), plots.py (one
  `plot_x(ax, data)` per figure) with plot_inputs.py, space_time.py and
  figures.py, the HTML page (page.py, experiment.py, markup.py), shiviz.py;
- frames.py: `load_run(path)`, a trial as polars DataFrames for notebooks;
- cli.py and console.py: the clocklab subcommands and what they print;
  errors.py: `AnalysisError` and its subclasses; testing.py: simulated trials
  whose logs are what real VMs write, for tests and benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.frames import Run


def load_run(path: str | Path) -> Run:
    """A trial directory as polars DataFrames: `run.events`, `run.messages` (frames.py).

    Imported on first use, so that `clocklab` starts without numpy or polars.
    """
    from analysis.frames import load_run as load

    return load(path)


__all__ = ["load_run"]
