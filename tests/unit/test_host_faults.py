"""What the cross-host benchmark reads from a trial's logs about its host faults."""

from __future__ import annotations

import math
from pathlib import Path

import orjson

from bench.host_faults import links_back, rejoined_at


def write_log(logs: Path, name: str, *lines: dict[str, object]) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    (logs / name).write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def up(peer: int, at: float) -> dict[str, object]:
    return {"event": "peer_up", "peer": peer, "timestamp": at}


def down(peer: int, at: float) -> dict[str, object]:
    return {"event": "peer_down", "peer": peer, "timestamp": at, "reason": "silent"}


def test_each_link_cut_during_the_partition_counts_from_the_heal_to_its_next_peer_up(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    # the partition lasts from 10 to 20
    write_log(logs, "vm0.jsonl", up(1, 1.0), up(2, 1.0), down(2, 12.0), up(2, 20.5), up(2, 30.0))
    write_log(logs, "vm1.jsonl", up(0, 1.0), down(2, 9.0), up(2, 9.5))  # before: not counted
    write_log(logs, "vm2.jsonl", down(0, 13.0), {"event": "internal", "tick": 3}, down(1, 25.0))
    with (logs / "vm2.jsonl").open("ab") as log:  # a last line cut short by a kill
        log.write(b'{"event": "peer_u')
    back = links_back(tmp_path, 10.0, 20.0)
    assert back == {(0, 2): 0.5, (2, 0): math.inf}  # vm2 never logged vm0 back


def test_a_restarted_vm_has_rejoined_once_it_logged_every_peer_up(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_log(logs, "vm0.jsonl", up(1, 1.0), up(2, 1.0))  # the first incarnation: not counted
    write_log(logs, "vm1.1.jsonl", up(0, 31.0), up(2, 31.5), down(2, 40.0), up(2, 41.0))
    write_log(logs, "vm2.1.jsonl", up(0, 31.2))  # never linked to vm1
    assert rejoined_at(tmp_path, 3) == {1: 31.5, 2: math.inf}
