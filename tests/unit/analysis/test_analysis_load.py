"""Loading: finding runs, reading every good line, quarantining every bad one by file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from runlogs import doctor, find, is_event, records, replace_line

from analysis.errors import NoRunsError, RunDirError
from analysis.load.runs import find_runs, load_trial
from vm_node.rundir import RunDir
from vm_node.sim import SyntheticRun, write_run


def vm1(run_dir: Path) -> Path:
    return RunDir(run_dir).log_path(1)


def reasons(run_dir: Path) -> dict[str, str]:
    trial = load_trial(run_dir)
    return {f"{q.path.name}:{q.line}": q.reason for q in trial.quarantined}


def test_every_line_of_a_valid_run_loads_with_its_messages(run_dir: Path) -> None:
    trial = load_trial(run_dir)
    logs = [list(records(RunDir(run_dir).log_path(i))) for i in range(3)]
    everything = [r for log in logs for _, r in log]
    assert len(trial.lines) == len(everything)
    assert len(trial.sends) == sum(len(r["msg_ids"]) for r in everything if r["event"] == "send")
    assert len(trial.receives) == sum(r["event"] == "receive" for r in everything)
    assert len(trial.failures) == sum(r["event"] == "send_failed" for r in everything)
    assert trial.quarantined_count == 0 and trial.problems == ()


def test_a_row_is_named_by_its_file_and_line(run_dir: Path) -> None:
    trial = load_trial(run_dir)
    row = trial.files[1].first_row + 4
    assert trial.where(row) == f"{vm1(run_dir)}:5"


def test_a_malformed_line_is_quarantined_by_file_and_line_and_its_neighbours_still_load(
    run_dir: Path,
) -> None:
    before = len(load_trial(run_dir).lines)
    replace_line(vm1(run_dir), 7, b'{"event": "internal", "timest')
    trial = load_trial(run_dir)
    assert len(trial.lines) == before - 1
    assert trial.quarantined_count == 1
    assert str(trial.quarantined[0]).startswith(f"{vm1(run_dir)}:7: malformed or truncated JSON")


def test_a_missing_required_key_is_reported_by_name(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.pop("lamport"))
    assert reasons(run_dir) == {"vm1.jsonl:9": "missing required key 'lamport'"}


def test_a_value_of_the_wrong_type_is_reported_with_the_value(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(lamport="12"))
    assert reasons(run_dir) == {"vm1.jsonl:9": "lamport is str '12', expected int"}


def test_a_boolean_is_not_accepted_as_a_vm_id(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(vm=True))
    assert reasons(run_dir) == {"vm1.jsonl:9": "vm is bool True, expected int"}


def test_a_stop_line_whose_missing_byes_are_not_vm_ids_is_quarantined(run_dir: Path) -> None:
    last = len(vm1(run_dir).read_bytes().splitlines())
    doctor(vm1(run_dir), last, lambda r: r.update(missing_byes=["vm0"]))
    assert reasons(run_dir) == {f"vm1.jsonl:{last}": "missing_byes is str 'vm0', expected int"}


def test_a_line_from_another_run_is_quarantined(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(run="elsewhere"))
    assert "vm1.jsonl:9" in reasons(run_dir)
    assert "'elsewhere' is not this trial's run" in reasons(run_dir)["vm1.jsonl:9"]


def test_a_send_naming_more_recipients_than_msg_ids_is_quarantined(run_dir: Path) -> None:
    line, _ = find(vm1(run_dir), is_event("send"))
    doctor(vm1(run_dir), line, lambda r: r.update(to=[0, 2, 0]))
    assert reasons(run_dir) == {f"vm1.jsonl:{line}": "send: 'to' and 'msg_ids' differ in length"}


def test_an_unknown_event_and_an_empty_line_are_quarantined(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(event="teleport"))
    replace_line(vm1(run_dir), 10, b"")
    assert reasons(run_dir) == {
        "vm1.jsonl:9": "unknown event 'teleport'",
        "vm1.jsonl:10": "empty line",
    }


def test_unknown_extra_keys_are_fine(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(colour="blue", nested={"a": [1]}))
    assert load_trial(run_dir).quarantined_count == 0


def test_a_huge_clock_is_quarantined_rather_than_overflowing(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(lamport=2**63 + 5))
    assert reasons(run_dir) == {"vm1.jsonl:9": "lamport has a value beyond 64 bits"}


def test_bad_lines_anywhere_in_a_large_file_cost_only_themselves(tmp_path: Path) -> None:
    run_dir = write_run(
        SyntheticRun(rates=(20.0, 30.0), duration=400.0, time_scale=100.0), tmp_path
    )
    path = RunDir(run_dir).log_path(1)
    total = len(load_trial(run_dir).lines)
    bad = [3, 4000, 4001, 9999]
    for line in bad:
        doctor(path, line, lambda r: r.update(seq=None))
    trial = load_trial(run_dir)
    assert [q.line for q in trial.quarantined] == bad
    assert len(trial.lines) == total - len(bad)


def test_a_restarted_vm_is_read_as_its_second_incarnation(run_dir: Path) -> None:
    restart = RunDir(run_dir).log_path(1, 1)
    lines = [orjson.dumps(r | {"incarnation": 1}) for _, r in records(vm1(run_dir))]
    restart.write_bytes(b"\n".join(lines) + b"\n")
    trial = load_trial(run_dir)
    assert [(f.vm, f.incarnation) for f in trial.files] == [(0, 0), (1, 0), (1, 1), (2, 0)]
    assert trial.quarantined_count == 0


def test_a_jsonl_file_that_is_not_a_vm_log_is_reported_and_skipped(run_dir: Path) -> None:
    (run_dir / "logs" / "notes.jsonl").write_text("{}\n")
    problems = load_trial(run_dir).problems
    assert len(problems) == 1 and "notes.jsonl: ignored, not a VM log name" in problems[0]


def test_without_a_manifest_the_experiment_and_trial_come_from_the_path(run_dir: Path) -> None:
    (run_dir / "manifest.json").unlink()
    trial = load_trial(run_dir)
    assert (trial.manifest.experiment, trial.manifest.trial, trial.vms) == ("small", 1, 3)


def test_runs_are_found_from_a_root_an_experiment_a_trial_or_a_logs_directory(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    for trial in (10, 2, 1):
        write_run(SyntheticRun(rates=(1.0, 2.0), duration=5.0, trial=trial, experiment="a"), root)
    write_run(SyntheticRun(rates=(1.0, 2.0), duration=5.0, experiment="b"), root)
    a = root / "a"
    assert find_runs([root]) == [
        a / "trial-1",
        a / "trial-2",
        a / "trial-10",
        root / "b" / "trial-1",
    ]
    assert find_runs([a]) == [a / "trial-1", a / "trial-2", a / "trial-10"]
    assert find_runs([a / "trial-2"]) == find_runs([a / "trial-2" / "logs"]) == [a / "trial-2"]


def test_a_directory_without_logs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoRunsError, match=r"no run found under .*expected directories with logs"):
        find_runs([tmp_path])
    with pytest.raises(RunDirError, match="no such directory"):
        find_runs([tmp_path / "nowhere"])


def test_a_broken_manifest_is_a_clear_error(run_dir: Path) -> None:
    (run_dir / "manifest.json").write_text("{not json")
    with pytest.raises(RunDirError, match=r"manifest\.json: cannot read the manifest"):
        load_trial(run_dir)


def test_fault_windows_are_read_from_the_manifest(run_dir: Path) -> None:
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    manifest["faults"] = [{"kind": "partition", "start": 10.5, "end": 12.0, "targets": [1]}]
    (run_dir / "manifest.json").write_bytes(orjson.dumps(manifest))
    (fault,) = load_trial(run_dir).manifest.faults
    assert (fault.kind, fault.start, fault.end, fault.targets) == ("partition", 10.5, 12.0, (1,))


def test_a_copied_run_directory_loads_the_same(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "copy" / "trial-1")
    assert len(load_trial(copy).lines) == len(load_trial(run_dir).lines)


def test_blocks_of_any_size_read_the_same_rows_and_bad_lines(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analysis.load.logfile

    path = vm1(run_dir)
    last = len(path.read_bytes().splitlines())
    doctor(path, last - 3, lambda r: r.update(lamport="12"))
    replace_line(path, last - 5, b"")
    whole = load_trial(run_dir)
    monkeypatch.setattr(analysis.load.logfile, "BLOCK_BYTES", 2048)
    small = load_trial(run_dir)
    assert small.files == whole.files
    assert small.quarantined == whole.quarantined
    assert {f"{q.path.name}:{q.line}" for q in small.quarantined} == {
        f"vm1.jsonl:{last - 5}",
        f"vm1.jsonl:{last - 3}",
    }
    for name in ("line", "event", "timestamp", "lamport", "tick", "vc"):
        assert (getattr(small.lines, name) == getattr(whole.lines, name)).all(), name
    assert small.sends.msg_id == whole.sends.msg_id
    assert (small.receive_send == whole.receive_send).all()


def test_a_last_line_cut_short_is_quarantined_and_one_without_its_newline_is_read(
    run_dir: Path,
) -> None:
    path = vm1(run_dir)
    raw = path.read_bytes()
    total = len(load_trial(run_dir).lines)
    path.write_bytes(raw.removesuffix(b"\n"))
    assert len(load_trial(run_dir).lines) == total
    path.write_bytes(raw[:-20])
    trial = load_trial(run_dir)
    last = len(raw.splitlines())
    assert [(q.line, q.reason.split(" (")[0]) for q in trial.quarantined] == [
        (last, "malformed or truncated JSON")
    ]
    assert len(trial.lines) == total - 1


def test_a_vector_clock_naming_a_vm_the_run_lacks_is_quarantined(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r["vc"].update({"7": 0}))
    assert reasons(run_dir) == {
        "vm1.jsonl:9": "vc has key '7', which is not one of the run's 3 VMs"
    }


def test_a_line_from_another_vm_is_quarantined_naming_the_file(run_dir: Path) -> None:
    doctor(vm1(run_dir), 9, lambda r: r.update(vm=2))
    assert reasons(run_dir) == {"vm1.jsonl:9": "vm 2 does not match the file name vm1.jsonl"}
