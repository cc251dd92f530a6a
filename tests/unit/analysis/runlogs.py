"""Reading and doctoring single lines of a run's logs, for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from vm_node.rundir import Manifest, RunDir, log_name, parse_log_name

Record = dict[str, Any]


def records(path: Path) -> Iterator[tuple[int, Record]]:
    """(line number from 1, object) for every line of a log."""
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        yield number, orjson.loads(raw)


def find(path: Path, want: Callable[[Record], bool], nth: int = 0) -> tuple[int, Record]:
    """The nth line of a log that `want` accepts."""
    found = [(n, r) for n, r in records(path) if want(r)]
    assert len(found) > nth, f"no line #{nth} like that in {path}"
    return found[nth]


def doctor(path: Path, line: int, change: Callable[[Record], None]) -> None:
    """Rewrite one line of a log after `change` edits its object in place."""
    raw = path.read_bytes().splitlines()
    record = orjson.loads(raw[line - 1])
    change(record)
    raw[line - 1] = orjson.dumps(record)
    path.write_bytes(b"\n".join(raw) + b"\n")


def replace_line(path: Path, line: int, content: bytes) -> None:
    raw = path.read_bytes().splitlines()
    raw[line - 1] = content
    path.write_bytes(b"\n".join(raw) + b"\n")


def is_event(kind: str) -> Callable[[Record], bool]:
    return lambda r: r["event"] == kind


def restart(path: Path, killed_after: int) -> Path:
    """Split a VM's log as if it was killed after `killed_after` lines and restarted.

    The second incarnation resumes the clocks of the first one's last line, as
    vm_node does, and ends with a stop line whose totals are its own.
    """
    lines = [r for _, r in records(path)]
    head, tail, stop = lines[:killed_after], lines[killed_after:-1], lines[-1]
    resumed = {"lamport": head[-1]["lamport"], "vc": head[-1]["vc"], "queue_len": 0}
    second = [lines[0] | resumed, lines[1] | resumed | {"resumed": True}, *tail]
    second.append(
        stop
        | {
            "ticks": sum(r["event"] in ("internal", "send", "receive") for r in tail),
            "sent": sum(len(r.get("msg_ids", ())) for r in tail),
            "received": sum(r["event"] == "receive" for r in tail),
            "dropped": sum(r["event"] == "send_failed" for r in tail),
        }
    )
    for seq, record in enumerate(second):
        record.update(seq=seq, incarnation=1)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in head))
    name = parse_log_name(path.name)
    assert name is not None, f"{path} is not a VM log"
    restarted = path.with_name(log_name(name[0], name[1] + 1))
    restarted.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in second))
    return restarted


def write_logs(run_dir: Path, logs: dict[int, list[Record]], manifest: Manifest) -> Path:
    """Write hand-made logs: each record gets its seq, run, vm and incarnation 0."""
    run = RunDir(run_dir)
    run.logs.mkdir(parents=True)
    for vm, lines in logs.items():
        full = [
            r | {"seq": seq, "run": "hand", "vm": vm, "incarnation": 0}
            for seq, r in enumerate(lines)
        ]
        run.log_path(vm).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in full))
    run.write_manifest(manifest.with_(run="hand"))
    return run_dir


def remove_line(path: Path, line: int) -> Record:
    """Delete one line as a careful forger would: later lines' seq close the gap."""
    raw = path.read_bytes().splitlines()
    removed: Record = orjson.loads(raw.pop(line - 1))
    for i in range(line - 1, len(raw)):
        record = orjson.loads(raw[i])
        record["seq"] -= 1
        raw[i] = orjson.dumps(record)
    path.write_bytes(b"\n".join(raw) + b"\n")
    return removed
