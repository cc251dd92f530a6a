"""Loading: find run directories and read every log line into typed numpy columns.

runs.py finds trials and assembles a `TrialLog`; logfile.py reads one log in
batches; schema.py says what a line must hold; columns.py holds the result.
"""

from analysis.load.runs import find_runs, load_trial, load_trials

__all__ = ["find_runs", "load_trial", "load_trials"]
