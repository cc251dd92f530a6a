"""Bad input from every angle: properties of the decoder, and a raw-socket fuzzer at a live VM."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st
from vmpeer import FakePeer, frame, message

from vm_node.errors import BadFrame
from vm_node.receiver import HELLO_TIMEOUT, HELLO_TIMEOUT_PER_PEER
from vm_node.wire import Codec, LineSplitter

CODEC = Codec(run="unit", me=0, vms=3)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=600))
def test_any_bytes_decode_to_a_frame_or_a_bad_frame_and_nothing_else(data: bytes) -> None:
    with contextlib.suppress(BadFrame):
        CODEC.decode(data)


@given(
    st.dictionaries(
        st.sampled_from(["type", "run", "from", "to", "msg_id", "lamport", "vc", "count"]),
        json_values,
    )
)
def test_any_json_object_decodes_to_a_frame_or_a_bad_frame(obj: dict[str, object]) -> None:
    with contextlib.suppress(BadFrame):
        CODEC.decode(orjson.dumps(obj))


@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_lines_come_out_the_same_however_the_stream_is_cut(
    lines: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(line.replace(b"\n", b"") + b"\n" for line in lines)
    whole = LineSplitter(limit=100).feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    splitter, pieces, start = LineSplitter(limit=100), [], 0
    for cut in [*cuts, len(stream)]:
        pieces += splitter.feed(stream[start:cut])
        start = cut
    assert pieces == whole


def malformed_frames(rng: random.Random, count: int) -> list[bytes]:
    """One line each (no newline inside), every one invalid for vm0 of run 'unit'."""

    def raw(n: int) -> bytes:
        return bytes(rng.randrange(256) for _ in range(n)).replace(b"\n", b"\x00") + b"\n"

    makers = [
        lambda: raw(rng.randrange(1, 200)),
        lambda: b"\xc3\x28\xa0\xa1 not utf-8\n",
        lambda: b"{" * 2000 + b"\n",
        lambda: b"[" * 3000 + b"]" * 3000 + b"\n",
        lambda: b"x" * rng.randrange(4097, 9000) + b"\n",
        lambda: frame(type="msg", to=0, msg_id="m", lamport=rng.choice([-1, 2**53, 2**63]), vc={}),
        lambda: frame(
            type="msg", to=0, msg_id="m", lamport=rng.choice(["1", 1.5, None, [], True]), vc={}
        ),
        lambda: b'{"type":"msg","run":"unit","from":1,"to":0,"msg_id":"m","lamport":NaN,"vc":{}}\n',
        lambda: frame(type="msg", to=0, msg_id="m", lamport=1, vc={"0": -5}),
        lambda: frame(type="msg", to=0, msg_id="m", lamport=1, vc={"99": 1}),
        lambda: frame(type="msg", to=0, msg_id="m", lamport=1, vc=[1, 2]),
        lambda: frame(type="msg", to=0, msg_id=rng.choice(["", "y" * 99, 7]), lamport=1, vc={}),
        lambda: frame(type=rng.choice(["shout", None, 3, "Msg"]), to=0),
        lambda: frame(type="msg", to=0, msg_id="m", lamport=1, vc={}, run="someone-else"),
        lambda: frame(type="msg", to=rng.choice([1, 2, 7, "0"]), msg_id="m", lamport=1, vc={}),
        lambda: (
            orjson.dumps({"type": "msg", "run": "unit", "from": rng.choice([9, -1, "1", True, 0])})
            + b"\n"
        ),
        lambda: frame(type="hello"),  # a second hello on one connection
        lambda: frame(type="ack", count=1),  # acks do not belong on inbound links
        lambda: b"\n",
        lambda: b"null\n",
    ]
    return [rng.choice(makers)() for _ in range(count)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_ten_thousand_malformed_frames_never_move_the_clock_or_stop_the_vm(peer: FakePeer) -> None:
    rng = random.Random(2026)
    rss_before = rss_kib(peer.proc.pid)
    frames = malformed_frames(rng, 10_000)
    for i in range(0, len(frames), 100):  # many frames per packet, frames across packets
        peer.send(b"".join(frames[i : i + 100]))
    strangers = 300  # frames before hello, on a connection that never says it
    with socket.create_connection(peer.to_vm.getpeername()) as stranger:
        stranger.sendall(b"".join(message(f"1-0-{i}", i) for i in range(strangers)))
        peer.wait_for("bad_frame", count=len(frames) + strangers, timeout=60)
    # Idle connections: past 256 waiting for a hello, the VM turns them away at once;
    # those it holds are dropped when their hello is overdue. Each counts once.
    idle = [socket.create_connection(peer.to_vm.getpeername()) for _ in range(1000)]
    rejected = peer.wait_for("bad_frame", count=len(frames) + strangers + 1000, timeout=60)
    rss_after = rss_kib(peer.proc.pid)
    for conn in idle:
        conn.close()
    reasons = {r["reason"] for r in rejected[-1000:]}
    overdue = f"no hello within {HELLO_TIMEOUT + HELLO_TIMEOUT_PER_PEER:g} s"  # vm0 of 2
    assert reasons == {"too many connections without hello", overdue}
    peer.send(message("1-0-valid", 5000, {"0": 0, "1": 5000}))
    (receive,) = peer.wait_for("receive", timeout=10)
    peer.stop()

    lines = peer.lines()
    stop = lines[-1]
    assert stop["event"] == "stop"
    assert stop["bad_frames"] == len(frames) + strangers + 1000  # every one rejected and counted
    ticks = [r for r in lines if "tick" in r]
    before_receive = [r for r in ticks if r["seq"] < receive["seq"]]
    # No valid message arrived before `receive`: every step of the clock was a tick of its own.
    assert before_receive[-1]["lamport"] == len(before_receive)
    assert receive["lamport"] == 5001 and receive["jump"] == 5001 - len(before_receive)
    # The VM kept its schedule: no tick skipped, and the rate held.
    assert [r["tick"] for r in ticks] == list(range(len(ticks)))
    assert abs(stop["rate_achieved"] / stop["rate_configured"] - 1) < 0.01
    print(f"RSS {rss_before} KiB before, {rss_after} KiB with 1000 idle connections")
    assert rss_after - rss_before < 30 * 1024
