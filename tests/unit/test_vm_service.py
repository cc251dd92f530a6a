"""vm_node as a process, over real sockets on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import orjson
from vmpeer import FakePeer, frame, message, start_vm

from vm_node.vocabulary import Message
from vm_node.wire import Codec

BAD_FRAMES = [
    b"\x00\xff\xfe\n",
    b"not json at all\n",
    b'{"type": "msg"\n',
    b"x" * 5000 + b"\n",
    b"[" * 3000 + b"]" * 3000 + b"\n",
    frame(type="msg", to=0, msg_id="a", lamport=-1, vc={}),
    frame(type="msg", to=0, msg_id="b", lamport=2**53, vc={}),
    frame(type="msg", to=0, msg_id="c", lamport="7", vc={}),
    frame(type="msg", to=0, msg_id="d", lamport=3, vc={"9": 1}),
    frame(type="msg", to=0, msg_id="e", lamport=3, vc={}, run="another"),
    frame(type="msg", to=1, msg_id="f", lamport=3, vc={}),
    frame(type="hello"),
    b'{"type":"msg","run":"unit","from":true,"to":0,"msg_id":"g","lamport":1,"vc":{}}\n',
    b'{"type":"msg","run":"unit","from":1,"to":0,"msg_id":"h","lamport":NaN,"vc":{}}\n',
]


def test_bad_frames_are_logged_and_never_move_the_clock(peer: FakePeer) -> None:
    for _ in range(10):
        for bad in BAD_FRAMES:
            peer.send(bad)
    rejected = peer.wait_for("bad_frame", count=10 * len(BAD_FRAMES))
    peer.stop()
    assert len(rejected) == 10 * len(BAD_FRAMES)
    assert all(r["reason"] for r in rejected)
    lines = peer.lines()
    for before, line in itertools.pairwise(lines):
        if line["event"] == "bad_frame":
            assert (line["lamport"], line["vc"]) == (before["lamport"], before["vc"])
    assert lines[-1]["event"] == "stop" and lines[-1]["bad_frames"] == 10 * len(BAD_FRAMES)


def test_a_message_is_received_by_the_exact_rule(peer: FakePeer) -> None:
    peer.send(message("1-0-1", 1000, {"0": 0, "1": 1000}))
    (receive,) = peer.wait_for("receive")
    peer.stop()
    lines = peer.lines()
    before = lines[lines.index(receive) - 1]
    assert receive["msg_id"] == "1-0-1" and receive["from"] == 1
    assert receive["lamport"] == max(before["lamport"], 1000) + 1
    assert receive["jump"] == receive["lamport"] - before["lamport"]
    assert receive["vc"] == {"0": before["vc"]["0"] + 1, "1": 1000}


def test_merged_and_split_frames_both_arrive(peer: FakePeer) -> None:
    peer.send(message("1-0-1", 5) + message("1-0-2", 6))  # two frames, one packet
    for byte in message("1-0-3", 7):  # one frame, a read for each of its bytes
        peer.send_read(bytes([byte]))
    received = peer.wait_for("receive", count=3)
    assert [r["msg_id"] for r in received] == ["1-0-1", "1-0-2", "1-0-3"]


def test_the_vm_sends_valid_frames_carrying_its_send_clock(peer: FakePeer) -> None:
    sends = peer.wait_for("send", count=3)
    peer.stop()
    peer.from_vm.join(timeout=5)  # the VM closed its link
    data = bytes(peer.from_vm.received)
    codec = Codec("unit", 1, 2)
    frames = [codec.decode(line) for line in data.splitlines()]
    messages = {f.msg_id: f for f in frames if isinstance(f, Message)}
    for send in sends:
        (msg_id,) = send["msg_ids"]
        assert messages[msg_id].lamport == send["lamport"]
        assert messages[msg_id].vc == send["vc"]


def test_a_frame_before_hello_is_rejected(peer: FakePeer) -> None:
    with socket.create_connection(peer.to_vm.getpeername()) as stranger:
        stranger.sendall(message("1-0-1", 3))
        (bad,) = peer.wait_for("bad_frame")
    assert bad["reason"] == "frame before hello"
    assert not [r for r in peer.lines() if r["event"] == "receive"]


def test_sigterm_stops_the_vm_without_waiting_for_byes_with_a_stop_line(
    make_peer: Callable[..., FakePeer],
) -> None:
    peer = make_peer("--bye-timeout", "60")
    took = peer.stop(signal.SIGTERM)
    assert took < 30  # a completed VM would wait up to 60 s for its peer's bye
    assert peer.proc.returncode == 0
    raw = peer.log.read_bytes()
    assert raw.endswith(b"\n")
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "signal"
    assert [r["seq"] for r in lines] == list(range(len(lines)))


def test_a_stopping_vm_closes_every_connection_before_its_stop_line(peer: FakePeer) -> None:
    """Strangers that never finish a line nor say hello: the VM ends their connections
    itself as it stops, and nothing it could say of them follows its stop line."""
    address = peer.to_vm.getpeername()
    strangers = [socket.create_connection(address) for _ in range(5)]
    for stranger in strangers:
        stranger.sendall(b'{"type": "hel')  # half a line, no newline
    peer.stop(signal.SIGTERM)
    for stranger in strangers:
        stranger.settimeout(10)
        assert stranger.recv(1) == b""  # the VM closed it
        stranger.close()
    lines = peer.lines()
    assert lines[-1]["event"] == "stop"
    assert not [r for r in lines if r["event"] == "bad_frame"]


def test_sigint_stops_the_vm_like_sigterm(make_peer: Callable[..., FakePeer]) -> None:
    peer = make_peer("--bye-timeout", "60")
    assert peer.stop(signal.SIGINT) < 30
    assert peer.proc.returncode == 0
    assert peer.lines()[-1]["event"] == "stop"


def test_with_an_auth_key_unsigned_frames_are_rejected(tmp_path: Path) -> None:
    fake = start_vm(tmp_path, "--auth-key", "secret", "--ready-timeout", "30")
    try:
        fake.send(frame(type="hello") + message("1-0-1", 3))
        rejected = fake.wait_for("bad_frame", count=2)
        assert {r["reason"] for r in rejected} == {"missing mac (this run requires authentication)"}
        assert fake.lines()[0]["config"]["auth"] is True
        assert "secret" not in fake.log.read_text()
    finally:
        fake.stop()
        fake.to_vm.close()
        fake.from_vm.conn.close()


def test_a_vm_asked_for_realtime_ticks_under_it_or_says_why_not(tmp_path: Path) -> None:
    fake = start_vm(tmp_path, "--realtime", "1")
    try:
        fake.wait_for("start")
        granted = fake.lines()[0]["config"]["realtime"]
        policy = os.sched_getscheduler(fake.proc.pid)
    finally:
        fake.stop()
        fake.to_vm.close()
        fake.from_vm.conn.close()
    if granted:  # root or CAP_SYS_NICE, as on CI
        assert policy == os.SCHED_RR
    else:
        assert policy == os.SCHED_OTHER
        assert "real-time scheduling refused" in (tmp_path / "stderr.txt").read_text()
