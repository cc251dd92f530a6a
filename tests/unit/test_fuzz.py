"""Bad input from every angle: properties of the decoder, and a raw-socket fuzzer at a live VM."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from vmpeer import FakePeer, frame, message

from vm_node.errors import BadFrame
from vm_node.receiver import HELLO_TIMEOUT, HELLO_TIMEOUT_PER_PEER
from vm_node.vocabulary import CLOCK_LIMIT, MAX_MSG_ID, Ack, Bye, Hello, Message, Ping, Ready
from vm_node.wire import Codec, LineSplitter

CODEC = Codec(run="unit", me=0, vms=3)
VM_KEYS = {"0", "1", "2"}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# Frames near the valid ones, a field or two changed, so that many decode and are checked.
VALID = {
    "hello": {"type": "hello"},
    "ready": {"type": "ready", "start_at": 1000.5},
    "bye": {"type": "bye"},
    "ping": {"type": "ping"},
    "ack": {"type": "ack", "count": 3},
    "msg": {"type": "msg", "to": 0, "msg_id": "1-0-7", "lamport": 7, "vc": {"0": 2, "1": 7}},
}
CHANGES = {
    "type": st.sampled_from([*VALID, "Msg", ""]),
    "run": st.sampled_from(["unit", "other", ""]),
    "from": st.integers(-1, 3),
    "to": st.integers(-1, 3),
    "msg_id": st.sampled_from(["1-0-1", "", "m" * MAX_MSG_ID, "m" * (MAX_MSG_ID + 1)]),
    "lamport": st.sampled_from([0, 1, -1, CLOCK_LIMIT - 1, CLOCK_LIMIT]),
    "vc": st.dictionaries(
        st.sampled_from(["0", "1", "2", "3", "x"]), st.sampled_from([0, 5, -1, CLOCK_LIMIT])
    ),
    "count": st.sampled_from([0, 1, -1, CLOCK_LIMIT]),
    "start_at": st.floats(-1, 2e9),
}


BASES = [*VALID.values(), *[VALID["msg"]] * 5]  # messages carry most of what is checked


@st.composite
def near_frames(draw: st.DrawFn) -> dict[str, object]:
    """A valid frame from VM 1 to VM 0, with at most one field changed or dropped."""
    obj: dict[str, object] = {"run": "unit", "from": 1} | draw(st.sampled_from(BASES))
    key = draw(st.sampled_from(sorted(CHANGES)))
    action = draw(st.sampled_from(["change", "change", "change", "drop", "keep"]))
    if action == "change":
        obj[key] = draw(CHANGES[key])
    elif action == "drop":
        obj.pop(key, None)
    return obj


def assert_a_frame_for_me(line: bytes) -> None:
    """Decoding `line` either raises BadFrame with a reason or gives a frame of this run,
    from another VM of it, and a message addressed to this VM with clocks of its VMs."""
    try:
        decoded = CODEC.decode(line)
    except BadFrame as e:
        assert str(e)
        return
    assert isinstance(decoded, Hello | Message | Ready | Bye | Ping | Ack)
    assert decoded.run == CODEC.run
    assert 0 <= decoded.sender < CODEC.vms and decoded.sender != CODEC.me
    if isinstance(decoded, Message):
        assert decoded.to == CODEC.me
        assert set(decoded.vc) <= VM_KEYS
        assert all(0 <= clock < CLOCK_LIMIT for clock in decoded.vc.values())
        assert 0 <= decoded.lamport < CLOCK_LIMIT and 1 <= len(decoded.msg_id) <= MAX_MSG_ID
    if isinstance(decoded, Ack):
        assert 0 <= decoded.count < CLOCK_LIMIT


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame's line with some of its bytes replaced."""
    line = bytearray(orjson.dumps(draw(near_frames())))
    for _ in range(draw(st.integers(0, 3))):
        line[draw(st.integers(0, len(line) - 1))] = draw(st.integers(0, 255))
    return bytes(line)


@settings(max_examples=500)
@given(st.binary(max_size=600) | mutated_frames())
def test_any_bytes_decode_to_a_frame_for_this_vm_or_a_bad_frame(data: bytes) -> None:
    assert_a_frame_for_me(data)


@settings(max_examples=500)
@given(st.dictionaries(st.sampled_from(sorted(CHANGES)), json_values) | near_frames())
def test_any_json_object_decodes_to_a_frame_for_this_vm_or_a_bad_frame(
    obj: dict[str, object],
) -> None:
    assert_a_frame_for_me(orjson.dumps(obj))


def test_the_frames_the_fuzzers_start_from_decode() -> None:
    for obj in VALID.values():
        line = orjson.dumps({"run": "unit", "from": 1} | obj)
        assert_a_frame_for_me(line)
        CODEC.decode(line)  # raises where one of them stopped being valid


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


def test_ten_thousand_malformed_frames_never_move_the_clock_or_stop_the_vm(
    make_peer: Callable[..., FakePeer],
) -> None:
    peer = make_peer(asyncio_debug=False)  # the mode's bookkeeping per connection is a load
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
    # The VM kept its schedule: no tick skipped, and the rate held (loosely: a busy
    # machine stalls a short run's ticks by more than the garbage does).
    assert [r["tick"] for r in ticks] == list(range(len(ticks)))
    assert abs(stop["rate_achieved"] / stop["rate_configured"] - 1) < 0.05
    print(f"RSS {rss_before} KiB before, {rss_after} KiB with 1000 idle connections")
    assert rss_after - rss_before < 30 * 1024
