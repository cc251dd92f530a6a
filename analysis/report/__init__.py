"""What people read: the HTML report, its figures and their inputs, the ShiViz export.

analyses.py runs load, check and metrics per trial for every output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.report.page import write_report


def __getattr__(name: str) -> Any:
    # The page imports matplotlib (half a second): `clocklab check`, which needs only
    # markup's number formats, must not pay for it, so write_report loads on first use.
    if name == "write_report":
        from analysis.report.page import write_report

        return write_report
    raise AttributeError(f"module 'analysis.report' has no attribute {name!r}")


__all__ = ["write_report"]
