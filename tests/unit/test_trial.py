"""Whatever goes wrong, a trial ends with its backend torn down and its manifest written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli, commands
from orchestrator.errors import TrialError
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.trial import Trial
from vm_node.rundir import Outcome, RunDir


class Broken:
    """A backend whose launch raises `launch_error`, and whose teardown may raise too."""

    name = "broken"

    def __init__(self, launch_error: Exception, teardown_error: Exception | None = None) -> None:
        self.launch_error = launch_error
        self.teardown_error = teardown_error
        self.torn_down = 0

    def launch(self, plan: Any, run_dir: RunDir) -> None:
        raise self.launch_error

    def exit_codes(self) -> dict[int, int | None]:
        return {}

    def diagnose(self, vm: int) -> str:
        return ""

    def teardown(self) -> None:
        self.torn_down += 1
        if self.teardown_error is not None:
            raise self.teardown_error

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


def manifest_of(out: Path) -> Any:
    return RunDir(out / "x" / "trial-1").read_manifest()


def test_an_unexpected_error_is_raised_after_the_manifest_says_failed(tmp_path: Path) -> None:
    backend = Broken(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        Trial(plan_trial(Experiment(name="x"), 1), backend, tmp_path).run()
    manifest = manifest_of(tmp_path)
    assert manifest.outcome is Outcome.FAILED and manifest.error == "RuntimeError: boom"
    assert backend.torn_down == 1


def test_a_teardown_that_fails_still_writes_the_manifest_with_both_errors(tmp_path: Path) -> None:
    backend = Broken(TrialError("vm1 never came up"), OSError("engine gone"))
    result = Trial(plan_trial(Experiment(name="x"), 1), backend, tmp_path).run()
    assert result.outcome is Outcome.FAILED
    assert result.error == "vm1 never came up; teardown: OSError: engine gone"
    assert manifest_of(tmp_path).error == result.error


def test_the_cli_reports_an_unexpected_error_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(args: object) -> int:
        raise KeyError("no such thing")

    monkeypatch.setattr(commands, "up", crash)
    monkeypatch.setattr(commands.console, "width", 300)
    assert cli.main(["up", "--backend", "local"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unexpected KeyError" in err
