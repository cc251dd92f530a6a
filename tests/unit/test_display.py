"""What the user sees of a sweep: one bar over its trials, with how many failed."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator.display import LiveDisplay
from orchestrator.events import SweepProgress


def test_a_sweep_shows_one_bar_per_label_with_its_trials_done_and_failed() -> None:
    out = io.StringIO()
    display = LiveDisplay(Console(file=out, force_terminal=False, width=120))
    display(SweepProgress("sweep", 0, 6, detail="(2 cells)"))
    display(SweepProgress("sweep", 4, 6, failed=1, detail="(2 cells)"))
    display(SweepProgress("fidelity probe", 2, 2))
    tasks = {t.description: t for t in display._progress.tasks}
    assert set(tasks) == {"sweep", "fidelity probe"}
    assert (tasks["sweep"].completed, tasks["sweep"].total) == (4, 6)
    assert tasks["sweep"].fields["detail"] == "4/6 trials, 1 failed (2 cells)"
    assert tasks["fidelity probe"].fields["detail"] == "2/2 trials"
