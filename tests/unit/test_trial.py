"""Whatever goes wrong, a trial ends with its backend torn down and its manifest written."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator import cli, commands, trial
from orchestrator.backends import BackendFactory
from orchestrator.errors import RunDirBusy, TrialError, UnexpectedError
from orchestrator.events import Notice
from orchestrator.experiment import Experiment
from orchestrator.node_clocks import ClockNode
from orchestrator.plan import TrialPlan, plan_trial
from orchestrator.runlock import sole_writer
from orchestrator.trial import Trial
from vm_node.rundir import Outcome, RunDir


class Broken:
    """A backend whose launch raises `launch_error`, and whose teardown may raise too."""

    name = "broken"

    def __init__(self, launch_error: Exception, teardown_error: Exception | None = None) -> None:
        self.launch_error = launch_error
        self.teardown_error = teardown_error
        self.torn_down = 0
        self.fault_parts: tuple[object, ...] = ()
        self.run_dir = RunDir(Path("unset"))

    def launch(self) -> None:
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


def made(backend: Broken) -> BackendFactory:
    """A factory that makes `backend`, whatever the trial, and tells it its run directory."""

    def make(plan: TrialPlan, run_dir: RunDir) -> Broken:
        backend.run_dir = run_dir
        return backend

    return make


def manifest_of(out: Path) -> Any:
    return RunDir(out / "x" / "trial-1").read_manifest()


def test_an_unexpected_error_keeps_its_traceback_in_the_trials_orchestrator_log(
    tmp_path: Path,
) -> None:
    backend = Broken(RuntimeError("boom"))
    with pytest.raises(UnexpectedError, match="unexpected RuntimeError: boom") as raised:
        Trial(plan_trial(Experiment(name="x"), 1), made(backend), tmp_path).run()
    log = RunDir(tmp_path / "x" / "trial-1").orchestrator_log
    assert raised.value.traceback_file == log and str(log) in str(raised.value)
    (line,) = [orjson.loads(text) for text in log.read_bytes().splitlines()]
    assert line["event"] == "unexpected_error" and line["error"] == "RuntimeError: boom"
    assert "Traceback (most recent call last)" in line["traceback"]
    assert "in launch" in line["traceback"]
    manifest = manifest_of(tmp_path)
    assert manifest.outcome is Outcome.FAILED and manifest.error == "RuntimeError: boom"
    assert backend.torn_down == 1


def test_a_teardown_that_fails_still_writes_the_manifest_with_both_errors(tmp_path: Path) -> None:
    backend = Broken(TrialError("vm1 never came up"), OSError("engine gone"))
    result = Trial(plan_trial(Experiment(name="x"), 1), made(backend), tmp_path).run()
    assert result.outcome is Outcome.FAILED
    assert result.error == "vm1 never came up; teardown: OSError: engine gone"
    assert manifest_of(tmp_path).error == result.error
    assert manifest_of(tmp_path).environment == {"backend": "broken", "faults": []}


def crash(args: object) -> int:
    raise KeyError("no such thing")


def test_the_cli_reports_an_unexpected_error_in_one_line_naming_its_traceback_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(commands, "up", crash)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cli.main(["up", "--backend", "local"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unexpected KeyError: 'no such thing'" in err
    (written,) = tmp_path.glob("clocklab-up-*.traceback")
    assert str(written) in err
    text = written.read_text()
    assert text.startswith("Traceback (most recent call last)") and "in crash" in text


def test_the_cli_with_debug_prints_the_traceback_and_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(commands, "up", crash)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cli.main(["--debug", "up", "--backend", "local"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)")
    assert "in crash" in err and err.rstrip().endswith("KeyError: 'no such thing'")
    assert list(tmp_path.iterdir()) == []


def test_a_trial_running_into_the_same_directory_is_refused_and_its_logs_kept(
    tmp_path: Path,
) -> None:
    log = tmp_path / "x" / "trial-1" / "logs" / "vm0.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"event":"start"}\n')
    backend = Broken(RuntimeError("must not launch"))
    busy = pytest.raises(RunDirBusy, match=r"trial-1 is being written by process \d+")
    with sole_writer(tmp_path, "x", 1), busy:  # the other command holds it, mid-trial
        Trial(plan_trial(Experiment(name="x"), 1), made(backend), tmp_path).run()
    assert log.read_text() == '{"event":"start"}\n'
    assert backend.torn_down == 0


def test_a_writer_killed_mid_trial_leaves_the_directory_free(tmp_path: Path) -> None:
    hold = (
        "import sys, time; from pathlib import Path; from orchestrator.runlock import sole_writer\n"
        "with sole_writer(Path(sys.argv[1]), 'x', 1):\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirBusy, match=str(holder.pid)), sole_writer(tmp_path, "x", 1):
            pass
    finally:
        holder.kill()
        holder.wait()
    with sole_writer(tmp_path, "x", 1):  # the kernel dropped the dead holder's lock
        pass
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == []  # no lock file left behind


class Hanging(Broken):
    """Both VMs get ready; vm0 stops and exits, vm1 never stops (its new task is stuck)."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))

    def launch(self) -> None:
        run_dir = self.run_dir
        run_dir.logs.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for vm in (0, 1):
            lines = [{"event": "ready", "vm": vm, "start_at": now}]
            lines += [{"event": "stop", "vm": vm, "reason": "completed"}] if vm == 0 else []
            text = "".join(orjson.dumps(line).decode() + "\n" for line in lines)
            (run_dir.logs / f"vm{vm}.jsonl").write_text(text)

    def exit_codes(self) -> dict[int, int | None]:
        return {0: 0, 1: None}

    def diagnose(self, vm: int) -> str:
        return "task preparing on host1" if vm == 1 else ""


def test_a_vm_that_never_stops_fails_the_trial_with_what_its_backend_knows_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trial, "FINISH_SLACK", 0.5)  # the wait, not a bound on anything
    plan = plan_trial(Experiment(name="x", vms=2, duration=0.1), 1)
    result = Trial(plan, made(Hanging()), tmp_path).run()
    assert result.outcome is Outcome.FAILED
    assert result.error == "vm1 still running 0.5 s past the end (vm1: task preparing on host1)"


class NeverStarting(Broken):
    """A fleet of 30 where 25 VMs got ready and vm3 gave up at the barrier and exited."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))

    def launch(self) -> None:
        run_dir = self.run_dir
        run_dir.logs.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for vm in range(25):
            line = {"event": "ready", "vm": vm, "start_at": now}
            (run_dir.logs / f"vm{vm}.jsonl").write_text(orjson.dumps(line).decode() + "\n")
        why = "5 of 29 peers never ready, 5 of them never linked: vm25, vm26, vm27, vm28, vm29"
        line = {"event": "stop", "vm": 3, "reason": why}
        with (run_dir.logs / "vm3.jsonl").open("a") as log:
            log.write(orjson.dumps(line).decode() + "\n")

    def exit_codes(self) -> dict[int, int | None]:
        return {vm: (1 if vm == 3 else None) for vm in range(30)}


def test_a_fleet_that_cannot_start_fails_in_one_line_saying_how_many_and_why(
    tmp_path: Path,
) -> None:
    plan = plan_trial(Experiment(name="x", vms=30, duration=1), 1)
    backend = NeverStarting()
    result = Trial(plan, made(backend), tmp_path).run()
    assert result.outcome is Outcome.FAILED and backend.torn_down == 1
    assert result.error == (
        "5 of 30 VMs never became ready (vm25, vm26, vm27, vm28, vm29): vm3 exited with "
        "code 1: 5 of 29 peers never ready, 5 of them never linked: vm25, vm26, vm27, vm28, vm29"
    )


class Measured(Broken):
    """Two VMs that get ready and complete on a backend whose nodes' clocks can be read:
    this machine's, and one whose reader dies."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))

    def clock_nodes(self) -> list[ClockNode]:
        return [
            ClockNode("here", (0, 1), (sys.executable,)),
            ClockNode("gone", (), (sys.executable, "-c", "raise SystemExit('no clock')")),
        ]

    def launch(self) -> None:
        run_dir = self.run_dir
        run_dir.logs.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for vm in (0, 1):
            lines = [
                {"event": "ready", "vm": vm, "start_at": now},
                {"event": "stop", "vm": vm, "reason": "completed"},
            ]
            text = "".join(orjson.dumps(line).decode() + "\n" for line in lines)
            (run_dir.logs / f"vm{vm}.jsonl").write_text(text)

    def exit_codes(self) -> dict[int, int | None]:
        return {0: 0, 1: 0}


def test_each_nodes_clock_is_read_at_the_start_and_the_end_and_a_failed_read_is_said(
    tmp_path: Path,
) -> None:
    said: list[object] = []
    plan = plan_trial(Experiment(name="x", vms=2, duration=0.1), 1)
    result = Trial(plan, made(Measured()), tmp_path, report=said.append).run()
    assert result.ok, result.error
    measured = manifest_of(tmp_path).node_offsets
    assert [(m.node, m.phase, m.vms) for m in measured] == [
        ("here", "start", (0, 1)),
        ("here", "end", (0, 1)),
    ]
    assert all(abs(m.offset) <= m.uncertainty + 1e-6 for m in measured)
    errors = manifest_of(tmp_path).environment["node_clock_errors"]
    assert list(errors) == ["gone"] and "no clock" in errors["gone"]
    assert any(isinstance(n, Notice) and "the clock of gone" in n.text for n in said)
