"""What people read: the HTML report, its figures and their inputs, the ShiViz export.

analyses.py runs load, check and metrics per trial for every output.
"""

from analysis.report.page import write_report

__all__ = ["write_report"]
