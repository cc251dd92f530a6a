"""A fleet of 200 VMs on the local backend: every VM starts, the trial is valid, and
no VM writes after its stop line or leaves an asyncio exception unretrieved."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import orjson
import pytest

from analysis.check import Verdict, check_trial
from analysis.load import load_trial
from orchestrator.backends.local import LocalBackend, free_port_block
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial

FLEET = 200
pytestmark = pytest.mark.slow


def test_a_fleet_of_200_local_vms_starts_runs_and_stops_cleanly(tmp_path: Path) -> None:
    # Not in asyncio's debug mode, which would slow 200 VMs past their start (the unit
    # tests run a VM in it): an unretrieved exception is reported without it too.
    experiment = Experiment(name="fleet", vms=FLEET, duration=10, time_scale=1, seed=3)
    backends = partial(LocalBackend, base_port=free_port_block(FLEET, 30000))
    result = Trial(plan_trial(experiment, 1), backends, tmp_path).run()
    assert result.ok, result.error
    assert all(p.ready for p in result.progress.values())

    check = check_trial(load_trial(result.run_dir.path))
    assert check.verdict is Verdict.VALID, [str(v) for v in check.examples]
    for vm in range(FLEET):
        lines = result.run_dir.log_path(vm).read_bytes().splitlines()
        assert orjson.loads(lines[-1])["event"] == "stop", f"vm{vm} wrote after its stop line"
        stderr = (result.run_dir.output / f"vm{vm}.log").read_text(errors="replace")
        assert "never retrieved" not in stderr and "Task was destroyed" not in stderr, stderr
