"""clocklab analysis: from a trial's JSON logs to numbers, a verdict, figures and a report.

The pipeline, one module per step:

- load.py, parse.py, schema.py: find run directories and read every log line into
  numpy columns (model.py), quarantining bad lines with file, line and reason;
- check.py, check_messages.py, verdict.py: the clock rules, line by line;
- series.py, metrics.py, accounting.py: rates, event shares, jumps, queues, drift and
  where every message went; compare.py, stats.py, conclusions.py: experiments side by
  side and the notebook's claims tested;
- plots.py (one `plot_x(ax, data)` per figure), views.py, spacetime.py, figures.py;
- report.py, experiment_section.py, markup.py: the self-contained HTML report;
- shiviz.py: export for ShiViz; cli.py, console.py: the clocklab subcommands;
- synthetic.py: simulated trials for tests; bench.py: the speed benchmark.
"""
