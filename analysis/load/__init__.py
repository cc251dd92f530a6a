"""Loading: find run directories and read every log line into typed numpy columns.

runs.py finds trials and assembles each into a `TrialLog` (analysis/columns.py),
one log file after another. logfile.py reads a file in blocks of whole lines,
each decoded in one msgspec call into the Structs of schema.py, which the
vocabulary's line types tightened to that file; a block with a bad line is
read line by line, and reasons.py words why each bad line was quarantined.
"""

from analysis.load.runs import find_runs, load_trial, load_trials

__all__ = ["find_runs", "load_trial", "load_trials"]
