"""Finding run directories and loading a trial's logs into one `TrialLog`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from analysis.errors import NoRunsError, RunDirError
from analysis.load.columns import LogFile, Quarantined, TrialLog
from analysis.load.logfile import BlockRead, Expected, peek
from analysis.load.matching import match
from analysis.load.part import Part
from analysis.load.plan import Block, plan_blocks
from analysis.load.readers import read_blocks
from analysis.load.sink import LinesSink
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
    firsts = {path: peek(path) for path, _, _ in logs}
    vms = _vm_count(manifest, list(firsts.values()), problems)
    run_id = manifest.run or next((f["run"] for f in firsts.values() if f and "run" in f), None)
    keys = tuple(str(j) for j in range(vms))
    expected = [
        Expected(path, index, vm, incarnation, run_id, keys)
        for index, (path, vm, incarnation) in enumerate(logs)
    ]
    blocks = plan_blocks([path for path, _, _ in logs])
    sink = LinesSink(sum(b.lines for b in blocks), vms)
    reads = read_blocks(expected, blocks, sink)
    placed = [placed for read in reads for placed in read.parts]
    lines = sink.lines([(at, part.rows) for at, part in placed])
    whole = Part.concat([part for _, part in placed])
    files, quarantined = _files(logs, blocks, reads, whole, problems)
    repeated, (receive_send, failure_send) = match(
        whole.sends.msg_id, (whole.receives.messages.msg_id, whole.failures.msg_id), whole.keys
    )
    present = {f.vm for f in files if f.incarnation == 0}
    problems += [
        f"VM {vm} has no log (expected logs/{log_name(vm, 0)})"
        for vm in range(vms)
        if vm not in present
    ]
    return TrialLog(
        path=run_dir,
        manifest=manifest,
        vms=vms,
        files=tuple(files),
        lines=lines,
        sends=whole.sends,
        receives=whole.receives,
        failures=whole.failures,
        drops=whole.drops,
        duplicates=whole.duplicates,
        receive_send=receive_send,
        failure_send=failure_send,
        repeated_sends=repeated,
        quarantined=quarantined,
        quarantined_count=sum(read.quarantined_count for read in reads),
        problems=tuple(problems),
    )


def _files(
    logs: list[tuple[Path, int, int]],
    blocks: list[Block],
    reads: list[BlockRead],
    whole: Part,
    problems: list[str],
) -> tuple[list[LogFile], tuple[Quarantined, ...]]:
    """Each file's rows and edges, and its first `KEEP_QUARANTINED` bad lines."""
    rows = [0] * len(logs)
    bad = [0] * len(logs)
    kept: list[list[Quarantined]] = [[] for _ in logs]
    for block, read in zip(blocks, reads, strict=True):
        rows[block.file] += sum(part.rows for _, part in read.parts)
        bad[block.file] += read.quarantined_count
        kept[block.file] += read.quarantined[: KEEP_QUARANTINED - len(kept[block.file])]
    files, first = [], 0
    for (path, vm, incarnation), count, quarantined in zip(logs, rows, bad, strict=True):
        files.append(_log_file(path, vm, incarnation, first, first + count, whole, quarantined))
        first += count
        if not count:
            problems.append(f"{path}: no readable line")
    return files, tuple(q for file in kept for q in file)


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


def _log_file(
    path: Path, vm: int, incarnation: int, first: int, end: int, whole: Part, quarantined: int
) -> LogFile:
    configs = [(row, c) for row, c in whole.configs if first <= row < end]
    ready = [(row, r) for row, r in whole.ready if first <= row < end]
    stops = [(row, s) for row, s in whole.stops if first <= row < end]
    return LogFile(
        path=path,
        vm=vm,
        incarnation=incarnation,
        first_row=first,
        end_row=end,
        config=configs[0][1] if configs else None,
        start_at=ready[0][1] if ready else None,
        totals=stops[-1][1] if stops else None,
        start_rows=tuple(row for row, _ in configs),
        stop_rows=tuple(row for row, _ in stops),
        quarantined=quarantined,
    )


def _natural(path: Path) -> tuple[object, ...]:
    """Sort `trial-10` after `trial-9`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path)))
