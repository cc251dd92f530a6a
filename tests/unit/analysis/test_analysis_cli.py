"""The clocklab subcommands analysis adds: arguments, output and exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from runlogs import doctor, find, is_event, replace_line

from analysis.cli import add_commands
from vm_node.rundir import RunDir


def clocklab(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="clocklab")
    add_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_check_exits_0_on_a_valid_run_and_says_so(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("check", str(run_dir)) == 0
    out = capsys.readouterr().out
    assert "small/trial-1: VALID" in out and out.endswith(
        "verdict: valid (1 valid, 0 invalid, 0 unknown)\n"
    )


def test_check_exits_1_on_a_doctored_run_and_names_the_line(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = RunDir(run_dir).log_path(2)
    line, _ = find(path, is_event("internal"), 3)
    doctor(path, line, lambda r: r.update(lamport=r["lamport"] + 2))
    assert clocklab("check", str(run_dir)) == 1
    assert f"    {path}:{line}: internal sets lamport" in capsys.readouterr().out


def test_check_exits_3_on_incomplete_logs(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_line(RunDir(run_dir).log_path(0), 3, b"{")
    assert clocklab("check", str(run_dir)) == 3
    assert "incomplete: 1 unreadable line(s), first" in capsys.readouterr().out


def test_check_json_gives_the_verdict_and_every_trial(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("check", "--json", str(run_dir)) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert document["verdict"] == "valid"
    assert [t["trial"] for t in document["trials"]] == ["small/trial-1"]


def test_a_path_without_runs_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("check", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("clocklab: error: no run found under") and err.count("\n") == 1


def test_analyze_prints_a_table_per_trial_and_the_claims(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("analyze", str(run_dir)) == 0
    out = capsys.readouterr().out
    assert "small/trial-1" in out and "vm2" in out and "every msg_id accounted for" in out
    assert "Slower VMs make larger logical clock jumps [small]" in out


def test_analyze_json_holds_metrics_check_experiments_and_claims(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("analyze", "--json", str(run_dir)) == 0
    document = orjson.loads(capsys.readouterr().out)
    (trial,) = document["trials"]
    assert [vm["rate"] for vm in trial["vms"]] == [1.0, 2.0, 3.0]
    assert trial["check"]["verdict"] == "valid"
    assert trial["accounting"]["sent"] > 0
    assert document["experiments"][0]["name"] == "small"
    assert {c["support"] for c in document["claims"]} <= {
        "supported", "partly supported", "contradicted", "inconclusive", "not testable here",
    }  # fmt: skip


def test_report_writes_the_file_it_is_asked_for(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "deep" / "r.html"
    assert clocklab("report", str(run_dir), "-o", str(output)) == 0
    assert output.read_text().startswith("<!DOCTYPE html>")
    assert str(output.resolve()) in capsys.readouterr().out


def test_report_can_also_save_every_figure_as_a_png(run_dir: Path, tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    assert (
        clocklab("report", str(run_dir), "-o", str(tmp_path / "r.html"), "--figures", str(figures))
        == 0
    )
    names = sorted(p.name for p in figures.iterdir())
    assert names == sorted(
        ["rate-effects.png", "model-fit.png", "clock-comparison.png"]
        + [
            f"small-{v}.png"
            for v in ("clocks", "zoom", "events", "queues", "drift", "jumps", "space-time")
        ]
    )


def test_export_writes_the_shiviz_log_to_standard_output_and_nothing_to_the_cwd(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert clocklab("export", "--shiviz", str(run_dir)) == 0
    assert capsys.readouterr().out.startswith("(?<event>")
    assert list(cwd.iterdir()) == []


def test_export_writes_to_the_file_given_with_o(run_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "trial.shiviz.log"
    assert clocklab("export", "--shiviz", str(run_dir), "-o", str(output)) == 0
    assert output.read_text().startswith("(?<event>")


def test_every_command_documents_its_exit_codes_in_its_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("check", "analyze", "report", "export"):
        with pytest.raises(SystemExit):
            clocklab(command, "--help")
        out = capsys.readouterr().out
        assert "3  verdict unknown" in out and "2  bad usage" in out, command


def test_export_needs_a_format(run_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        clocklab("export", str(run_dir))
    assert exit_.value.code == 2


def test_registering_the_commands_imports_nothing_heavy() -> None:
    heavy = "{'matplotlib', 'numpy', 'rich'}"
    code = f"import sys, analysis.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_analyze_json_gives_each_vm_the_models_prediction_beside_the_measurement(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.metrics.queueing import predict

    assert clocklab("analyze", "--json", str(run_dir)) == 0
    (trial,) = orjson.loads(capsys.readouterr().out)["trials"]
    expected = predict((1.0, 2.0, 3.0), 10, duration=40.0)
    for vm, model in zip(trial["vms"], expected, strict=True):
        assert vm["predicted"] == model.to_dict()
        assert vm["receive_share"] == pytest.approx(vm["receive"] / vm["ticks"])
    assert set(trial["vms"][0]["predicted"]) == {
        "receive_share", "send_share", "arrival_rate", "queue_growth", "queue_grows",
    }  # fmt: skip


def test_analyze_with_clocks_prints_each_clocks_figures_per_vm(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("analyze", "--clocks", "lamport,vector,hlc,bloom", str(run_dir)) == 0
    out = capsys.readouterr().out
    assert "small/trial-1 · clocks" in out
    for header in ("lamport mismatches", "vector mismatches", "hlc c max", "bloom FP rate"):
        assert header in out


def test_analyze_json_gives_the_clocks_asked_for_per_vm(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert clocklab("analyze", "--json", "--clocks", "lamport,hlc", str(run_dir)) == 0
    (trial,) = orjson.loads(capsys.readouterr().out)["trials"]
    assert list(trial["clocks"]) == ["lamport", "hlc"]
    assert trial["clocks"]["lamport"]["lamport mismatches"] == [0, 0, 0]
    assert trial["clocks"]["hlc"]["hlc l−pt max (s)"] == [0, 0, 0]


def test_analyze_refuses_an_unknown_clock_and_names_the_known_ones(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        clocklab("analyze", "--clocks", "lamport,sundial", str(run_dir))
    assert exited.value.code == 2
    assert (
        "unknown clock 'sundial'; choose from lamport,vector,hlc,bloom" in capsys.readouterr().err
    )


def test_check_and_analyze_take_a_skewed_trials_offsets_and_skew_overrides_them(
    make_run: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    skewed = str(make_run(clock_offsets=(0.0, 0.3, 0.0)))
    assert clocklab("check", skewed) == 0
    assert clocklab("check", "--skew", "0", skewed) == 1
    assert "more than --skew 0 s" in capsys.readouterr().out
    for argv, verdict in ((("analyze",), "valid"), (("analyze", "--skew", "0"), "invalid")):
        assert clocklab(*argv, "--json", skewed) == 0
        (trial,) = orjson.loads(capsys.readouterr().out)["trials"]
        assert trial["check"]["verdict"] == verdict
