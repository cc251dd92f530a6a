"""Finding run directories and loading a trial's logs into one `TrialLog`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from analysis.columns import Ints, LogFile, TrialLog
from analysis.errors import NoRunsError, RunDirError
from analysis.load.logfile import LogRead, Part, read_log
from analysis.load.schema import FileShape
from vm_node.rundir import Manifest, ManifestError, RunDir, log_name, parse_log_name

KEEP_QUARANTINED = 1000  # bad lines named per file; every one is counted


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Trial directories in or under each path: those whose `logs/` holds `*.jsonl`."""
    wanted = list(paths)
    found: dict[Path, None] = {}
    for path in wanted:
        if not path.is_dir():
            raise RunDirError(path, "no such directory")
        if path.name == "logs" and any(path.glob("*.jsonl")):
            path = path.parent
        if any((path / "logs").glob("*.jsonl")):
            found[path] = None
            continue
        for log in sorted(path.rglob("logs/*.jsonl"), key=_natural):
            found.setdefault(log.parent.parent, None)
    if not found:
        raise NoRunsError(wanted)
    return list(found)


def load_trials(paths: Iterable[Path]) -> Iterator[TrialLog]:
    """Load every trial under `paths`, one at a time."""
    for run_dir in find_runs(paths):
        yield load_trial(run_dir)


def load_trial(run_dir: Path) -> TrialLog:
    """Read a trial's manifest and every VM log into columns."""
    run = RunDir(run_dir)
    try:
        manifest = run.read_manifest()
    except ManifestError as e:
        raise RunDirError(e.path, str(e).removeprefix(f"{e.path}: ")) from e
    problems: list[str] = []
    logs = _log_files(run, problems)
    firsts = [_peek(path) for path, _, _ in logs]
    vms = _vm_count(manifest, firsts, problems)
    run_id = manifest.run or next((f["run"] for f in firsts if f and "run" in f), None)
    files: list[LogFile] = []
    reads: list[LogRead] = []
    row = 0
    for index, (path, vm, incarnation) in enumerate(logs):
        shape = FileShape(vm, incarnation, run_id if isinstance(run_id, str) else None, vms)
        read = read_log(path, shape, index, row, KEEP_QUARANTINED)
        files.append(_log_file(path, vm, incarnation, row, read))
        reads.append(read)
        row += read.rows
        if not read.rows:
            problems.append(f"{path}: no readable line")
    present = {f.vm for f in files if f.incarnation == 0}
    problems += [
        f"VM {vm} has no log (expected logs/{log_name(vm, 0)})"
        for vm in range(vms)
        if vm not in present
    ]
    whole = Part.join([part for read in reads for part in read.parts], vms)
    repeated, (receive_send, failure_send) = match(
        whole.sends.msg_id, (whole.receives.messages.msg_id, whole.failures.msg_id)
    )
    return TrialLog(
        path=run_dir,
        manifest=manifest,
        vms=vms,
        files=tuple(files),
        lines=whole.lines,
        sends=whole.sends,
        receives=whole.receives,
        failures=whole.failures,
        drops=whole.drops,
        duplicates=whole.duplicates,
        receive_send=receive_send,
        failure_send=failure_send,
        repeated_sends=repeated,
        quarantined=tuple(q for read in reads for q in read.quarantined),
        quarantined_count=sum(read.quarantined_count for read in reads),
        problems=tuple(problems),
    )


def match(sends: tuple[str, ...], others: Sequence[tuple[str, ...]]) -> tuple[Ints, list[Ints]]:
    """The indices of the sends whose msg_id an earlier send carried; and for each msg_id of
    each of `others`, the index of the first send that carried it, or -1."""
    first = dict(zip(sends[::-1], range(len(sends) - 1, -1, -1), strict=True))  # earliest wins
    repeated = np.zeros(0, dtype=np.int64)
    if len(first) < len(sends):
        earliest = np.fromiter(map(first.__getitem__, sends), dtype=np.int64, count=len(sends))
        repeated = np.flatnonzero(earliest != np.arange(len(sends)))
    return repeated, [
        np.fromiter(map(first.get, some, repeat(-1)), dtype=np.int64, count=len(some))
        for some in others
    ]


def _log_files(run: RunDir, problems: list[str]) -> list[tuple[Path, int, int]]:
    """(path, vm, incarnation) of every VM log, in that order; other *.jsonl are reported."""
    for path in sorted(run.logs.glob("*.jsonl")):
        if parse_log_name(path.name) is None:
            problems.append(f"{path}: ignored, not a VM log name (vm<i>.jsonl or vm<i>.<k>.jsonl)")
    return [(path, vm, incarnation) for vm, incarnation, path in run.log_files()]


def _vm_count(
    manifest: Manifest, firsts: list[dict[str, object] | None], problems: list[str]
) -> int:
    """How many VMs the run had: the start lines say, else the first clocks or the manifest."""
    votes: Counter[int] = Counter()
    for first in firsts:
        if not first:
            continue
        config = first.get("config")
        if isinstance(config, dict) and isinstance(config.get("vms"), int):
            votes[config["vms"]] += 1
        elif isinstance(first.get("vc"), dict):
            votes[len(first["vc"])] += 1  # type: ignore[arg-type]
    if not votes:
        return len(manifest.rates) or len(firsts)
    if len(votes) > 1:
        problems.append(f"the logs disagree on the number of VMs: {dict(votes)}")
    return votes.most_common(1)[0][0]


def _log_file(path: Path, vm: int, incarnation: int, first: int, read: LogRead) -> LogFile:
    configs = [config for part in read.parts for config in part.configs]
    ready = [ready for part in read.parts for ready in part.ready]
    stops = [stop for part in read.parts for stop in part.stops]
    return LogFile(
        path=path,
        vm=vm,
        incarnation=incarnation,
        first_row=first,
        end_row=first + read.rows,
        config=configs[0][1] if configs else None,
        start_at=ready[0][1] if ready else None,
        totals=stops[-1][1] if stops else None,
        start_rows=tuple(row for row, _ in configs),
        stop_rows=tuple(row for row, _ in stops),
        quarantined=read.quarantined_count,
    )


def _peek(path: Path) -> dict[str, Any] | None:
    """The first line of a file as an object, or None when it is not one."""
    with path.open("rb") as f:
        first = f.readline()
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _natural(path: Path) -> tuple[object, ...]:
    """Sort `trial-10` after `trial-9`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path)))
