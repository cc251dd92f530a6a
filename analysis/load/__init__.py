"""Loading: find run directories and read every log line into typed numpy columns.

runs.py finds trials and assembles a `TrialLog` (columns.py). plan.py cuts the
logs into blocks of whole lines; readers.py reads them, this process from the
front and a forked helper for a large trial from the back, into the shared
columns of sink.py. logfile.py reads one block: block.py decodes it in one
msgspec call into the narrow Structs of narrow.py (the vocabulary's, tightened
per file); a block with a bad line is read line by line with the same Structs,
and reasons.py words each bad line's reason. config.py checks a start line's
config; part.py holds a block's messages and edges; matching.py finds each
message's send by its msg_id.
"""

from analysis.load.runs import find_runs, load_trial, load_trials

__all__ = ["find_runs", "load_trial", "load_trials"]
