"""Numbers from a loaded trial: traces, per-VM metrics, experiment summaries, claims."""
