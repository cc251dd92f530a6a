import hashlib
import hmac
import re

import orjson
import pytest

from vm_node.wire import OVERSIZED, BadFrame, Bye, Codec, Hello, LineSplitter, Message, Ready

CODEC = Codec(run="r1", me=0, vms=3)


def msg(**changes: object) -> bytes:
    frame: dict[str, object] = {
        "type": "msg",
        "run": "r1",
        "from": 1,
        "to": 0,
        "msg_id": "1-0-1",
        "lamport": 4,
        "vc": {"0": 0, "1": 4, "2": 0},
    }
    frame.update(changes)
    return orjson.dumps({k: v for k, v in frame.items() if v is not ...})


def test_two_frames_in_one_packet_both_come_out() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":1}\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']


def test_one_frame_across_many_packets_comes_out_once_complete() -> None:
    splitter = LineSplitter()
    line = msg() + b"\n"
    out = [item for byte in line for item in splitter.feed(bytes([byte]))]
    assert out == [msg()]


def test_a_line_over_4096_bytes_is_reported_once_and_the_next_line_survives() -> None:
    splitter = LineSplitter()
    out = splitter.feed(b"x" * 3000) + splitter.feed(b"x" * 3000) + splitter.feed(b"x\n{}\n")
    assert out == [OVERSIZED, b"{}"]


def test_a_line_of_exactly_4096_bytes_is_accepted() -> None:
    assert LineSplitter().feed(b"y" * 4096 + b"\n") == [b"y" * 4096]


def test_a_valid_message_decodes_with_its_clocks() -> None:
    assert CODEC.decode(msg()) == Message(1, "1-0-1", 4, {"0": 0, "1": 4, "2": 0})


def test_control_frames_decode() -> None:
    assert CODEC.decode(b'{"type":"hello","run":"r1","from":2}') == Hello(2)
    assert CODEC.decode(b'{"type":"bye","run":"r1","from":2}') == Bye(2)
    assert CODEC.decode(b'{"type":"ready","run":"r1","from":1,"start_at":5.5}') == Ready(1, 5.5)


def test_what_the_codec_encodes_it_decodes() -> None:
    sender = Codec(run="r1", me=1, vms=3)
    line = sender.encode_message(0, Message(1, "1-0-9", 7, {"0": 1, "1": 7, "2": 0}))
    assert line.endswith(b"\n")
    assert CODEC.decode(line.rstrip(b"\n")) == Message(1, "1-0-9", 7, {"0": 1, "1": 7, "2": 0})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe garbage", "bad JSON"),
        (b'{"type": "msg", ', "bad JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "bad JSON"),
        (msg().replace(b'"lamport":4', b'"lamport":NaN'), "bad JSON"),
        (msg(run="other"), "another run"),
        (msg(**{"from": 7}), "unknown sender 7"),
        (msg(**{"from": 0}), "that is this VM"),
        (msg(**{"from": True}), "not an integer VM id"),
        (msg(**{"from": "1"}), "not an integer VM id"),
        (msg(to=2), "message for VM 2"),
        (msg(lamport=-1), "outside [0, 2^53)"),
        (msg(lamport=2**53), "outside [0, 2^53)"),
        (msg(lamport=1.5), "not an integer"),
        (msg(lamport=True), "not an integer"),
        (msg(lamport=...), "not an integer"),
        (msg(vc=[1, 2]), "vc is not an object"),
        (msg(vc={"5": 1}), "not a VM id"),
        (msg(vc={"01": 1}), "not a VM id"),
        (msg(vc={"1": -3}), "outside [0, 2^53)"),
        (msg(msg_id=""), "msg_id"),
        (msg(msg_id="x" * 65), "msg_id"),
        (msg(type="shout"), "unknown frame type"),
        (b'{"type":"ready","run":"r1","from":1,"start_at":"soon"}', "start_at"),
        (b"[" * 5000 + b"]" * 5000, "bad JSON"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=re.escape(reason)):
        CODEC.decode(line)


def test_with_a_key_only_frames_carrying_its_hmac_are_accepted() -> None:
    key = b"trial-secret"
    sender, receiver = Codec("r1", 1, 3, key), Codec("r1", 0, 3, key)
    good = sender.encode_message(0, Message(1, "1-0-1", 1, {"1": 1})).rstrip(b"\n")
    assert receiver.decode(good) == Message(1, "1-0-1", 1, {"1": 1})
    with pytest.raises(BadFrame, match="missing mac"):
        receiver.decode(msg())
    forged = orjson.loads(good)
    forged["lamport"] = 99
    with pytest.raises(BadFrame, match="bad mac"):
        receiver.decode(orjson.dumps(forged))


def test_an_hmac_made_with_another_key_is_rejected() -> None:
    body = orjson.loads(msg())
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    body["mac"] = hmac.new(b"wrong", canonical, hashlib.sha256).hexdigest()
    with pytest.raises(BadFrame, match="bad mac"):
        Codec("r1", 0, 3, b"right").decode(orjson.dumps(body))
