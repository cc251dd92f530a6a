import hashlib
import hmac
import re

import orjson
import pytest

from vm_node.errors import BadFrame
from vm_node.seal import Seal
from vm_node.vocabulary import Bye, Hello, Message, Ready
from vm_node.wire import OVERSIZED, Codec, LineSplitter

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
    assert CODEC.decode(msg()) == Message("r1", 1, 0, "1-0-1", 4, {"0": 0, "1": 4, "2": 0})


def test_control_frames_decode() -> None:
    assert CODEC.decode(b'{"type":"hello","run":"r1","from":2}') == Hello("r1", 2)
    assert CODEC.decode(b'{"type":"bye","run":"r1","from":2}') == Bye("r1", 2)
    ready = b'{"type":"ready","run":"r1","from":1,"start_at":5.5}'
    assert CODEC.decode(ready) == Ready("r1", 1, 5.5)


def test_what_the_codec_encodes_it_decodes() -> None:
    sender = Codec(run="r1", me=1, vms=3)
    line = sender.message(0, "1-0-9", 7, {"0": 1, "1": 7, "2": 0})
    assert line.endswith(b"\n")
    expected = Message("r1", 1, 0, "1-0-9", 7, {"0": 1, "1": 7, "2": 0})
    assert CODEC.decode(line.rstrip(b"\n")) == expected


def test_the_wire_bytes_keep_the_documented_keys() -> None:
    line = Codec(run="r1", me=1, vms=3).message(0, "1-0-9", 7, {"0": 1, "1": 7, "2": 0})
    assert orjson.loads(line) == {
        "type": "msg",
        "run": "r1",
        "from": 1,
        "to": 0,
        "msg_id": "1-0-9",
        "lamport": 7,
        "vc": {"0": 1, "1": 7, "2": 0},
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe garbage", "bad JSON"),
        (b'{"type": "msg", ', "bad JSON"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b"", "bad JSON"),
        (msg().replace(b'"lamport":4', b'"lamport":NaN'), "bad JSON"),
        (msg(run="other"), "another run: 'other' - at `$.run`"),
        (msg(**{"from": 7}), "unknown sender 7 - at `$.from`"),
        (msg(**{"from": 0}), "that is this VM - at `$.from`"),
        (msg(**{"from": True}), "Expected `int`, got `bool` - at `$.from`"),
        (msg(**{"from": "1"}), "Expected `int`, got `str` - at `$.from`"),
        (msg(**{"from": -1}), "Expected `int` >= 0 - at `$.from`"),
        (msg(to=2), "message for VM 2, not this one - at `$.to`"),
        (msg(lamport=-1), "Expected `int` >= 0 - at `$.lamport`"),
        (msg(lamport=2**53), "Expected `int` <= 9007199254740991 - at `$.lamport`"),
        (msg(lamport=1.5), "Expected `int`, got `float` - at `$.lamport`"),
        (msg(lamport=True), "Expected `int`, got `bool` - at `$.lamport`"),
        (msg(lamport=...), "missing required field `lamport`"),
        (msg(vc=[1, 2]), "Expected `object`, got `array` - at `$.vc`"),
        (msg(vc={"5": 1}), "vc key '5' is not a VM id of this run - at `$.vc`"),
        (msg(vc={"01": 1}), "vc key '01' is not a VM id of this run - at `$.vc`"),
        (msg(vc={"1": -3}), "Expected `int` >= 0 - at `$.vc[...]`"),
        (msg(msg_id=""), "Expected `str` of length >= 1 - at `$.msg_id`"),
        (msg(msg_id="x" * 65), "Expected `str` of length <= 64 - at `$.msg_id`"),
        (msg(type="shout"), "Invalid value 'shout' - at `$.type`"),
        (msg(type=...), "missing required field `type`"),
        (b'{"type":"ready","run":"r1","from":1,"start_at":"soon"}', "at `$.start_at`"),
        (b'{"type":"ready","run":"r1","from":1,"start_at":1e400}', "at `$.start_at`"),
        (b'{"type":"ack","run":"r1","from":1,"count":-2}', "Expected `int` >= 0 - at `$.count`"),
        (b"[" * 5000 + b"]" * 5000, "Expected `object`, got `array`"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=re.escape(reason)):
        CODEC.decode(line)


def test_with_a_key_only_frames_carrying_its_hmac_are_accepted() -> None:
    key = b"trial-secret"
    sender, receiver = Codec("r1", 1, 3, key), Codec("r1", 0, 3, key)
    good = sender.message(0, "1-0-1", 1, {"1": 1}).rstrip(b"\n")
    assert receiver.decode(good) == Message("r1", 1, 0, "1-0-1", 1, {"1": 1})
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


def test_a_frame_signed_over_its_documented_canonical_form_is_accepted() -> None:
    """The canonical form: the frame without mac, compact JSON, keys sorted at every level."""
    key = b"trial-secret"
    body = orjson.loads(msg(vc={"2": 0, "0": 0, "1": 4}))
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    body["mac"] = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    frame = Codec("r1", 0, 3, key).decode(orjson.dumps(body))
    assert frame == Message("r1", 1, 0, "1-0-1", 4, {"2": 0, "0": 0, "1": 4})


@pytest.mark.parametrize("key", [b"", b"k", b"x" * 64, b"y" * 65, bytes(range(200))])
@pytest.mark.parametrize("message", [b"", b"{}", b'{"from":0,"run":"r","type":"hello"}' * 40])
def test_the_seal_is_hmac_sha256(key: bytes, message: bytes) -> None:
    seal = Seal(key)
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert seal.hexdigest(message) == expected
    assert seal.matches(expected, message)
    assert not seal.matches(expected[:-1] + "0" if expected[-1] != "0" else "1", message)


def test_a_mac_that_is_not_ascii_is_a_bad_frame_not_a_crash() -> None:
    codec = Codec("r", 1, 3, b"key")
    body = orjson.loads(Codec("r", 0, 3, b"key").hello())
    body["mac"] = "é" * 64
    with pytest.raises(BadFrame, match="bad mac"):
        codec.decode(orjson.dumps(body))
