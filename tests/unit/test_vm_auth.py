"""Two real VMs sharing a key read from a file, and an intruder on 127.0.0.1 without it."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from vmpeer import free_port, log_lines, wait_for

RUN = "unit-auth"
KEY = "per-trial-key-0123456789abcdef"
HUGE = 10**15  # a clock no tick of this test comes near


def start_vms(tmp_path: Path, key_file: Path) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    ports = [free_port(), free_port()]
    procs = []
    for vm in (0, 1):
        other = 1 - vm
        settings = {
            "vm": vm,
            "vms": 2,
            "run": RUN,
            "rate": 20,
            "duration": 600,  # stopped by the test once it has seen what it needs
            "seed": vm + 1,
            "host": "127.0.0.1",
            "port": ports[vm],
            "peers": f"{other}=127.0.0.1:{ports[other]}",
            "log_dir": tmp_path,
            "auth_key_file": key_file,
            "bye_timeout": 0.5,
        }
        env = os.environ | {f"CLOCKLAB_{k.upper()}": str(v) for k, v in settings.items()}
        with (tmp_path / f"stderr-{vm}.txt").open("wb") as stderr:  # the child keeps its copy
            procs.append(
                subprocess.Popen([sys.executable, "-m", "vm_node"], env=env, stderr=stderr)
            )
    return procs, ports


def signed(body: dict[str, Any], key: bytes) -> bytes:
    """A frame sealed as the wire documents it: HMAC of the sorted-key compact JSON."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    mac = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return orjson.dumps(body | {"mac": mac}) + b"\n"


def intrude(port: int, key: bytes | None) -> None:
    """A hello claiming to be vm1, then a message from vm1 with a huge clock."""
    hello = {"type": "hello", "run": RUN, "from": 1}
    forged = {"type": "msg", "run": RUN, "from": 1, "to": 0, "msg_id": "1-0-999999"}
    forged |= {"lamport": HUGE, "vc": {"0": 0, "1": HUGE}}
    frames = [hello, forged]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        if key is None:
            conn.sendall(b"".join(orjson.dumps(f) + b"\n" for f in frames))
        else:
            conn.sendall(b"".join(signed(f, key) for f in frames))


def test_vms_sharing_a_key_file_talk_and_reject_unsigned_or_forged_frames(tmp_path: Path) -> None:
    key_file = tmp_path / "clocklab_auth_key"
    key_file.write_text(KEY + "\n")  # as a secret file may end
    procs, ports = start_vms(tmp_path, key_file)
    logs = [tmp_path / "vm0.jsonl", tmp_path / "vm1.jsonl"]
    try:
        for log in logs:  # each VM takes in the other's signed messages
            wait_for(log, "receive", count=3, timeout=30)
        intrude(ports[0], key=None)
        intrude(ports[0], key=b"a key from another trial")
        rejected = wait_for(logs[0], "bad_frame", count=4, timeout=10)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=10) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    reasons = sorted(r["reason"] for r in rejected)
    assert (
        reasons
        == ["bad mac: frame not from this trial"] * 2
        + ["missing mac (this run requires authentication)"] * 2
    )
    vm0, vm1 = log_lines(logs[0]), log_lines(logs[1])
    assert vm0[-1]["event"] == "stop" and vm0[-1]["bad_frames"] == 4
    for before, line in itertools.pairwise(vm0):  # a rejected frame moves no clock
        if line["event"] == "bad_frame":
            assert (line["lamport"], line["vc"]) == (before["lamport"], before["vc"])
    assert max(r["lamport"] for r in vm0 + vm1) < HUGE
    assert "1-0-999999" not in {r.get("msg_id") for r in vm0}
    # Every message received was sent by the other VM (and signed by it).
    for mine, theirs in ((vm0, vm1), (vm1, vm0)):
        sent = {m for r in theirs if r["event"] == "send" for m in r["msg_ids"]}
        received = {r["msg_id"] for r in mine if r["event"] == "receive"}
        assert received and received <= sent
    for log, lines in zip(logs, (vm0, vm1), strict=True):
        assert lines[0]["config"]["auth"] is True
        assert KEY not in log.read_text()
