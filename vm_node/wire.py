"""The wire format: newline-delimited JSON frames, validated before use.

`LineSplitter` turns a byte stream into lines of at most MAX_LINE bytes;
`parse_frame` turns one line into a typed frame or raises BadFrame with the
reason. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

import orjson

from vm_node.events import CLOCK_LIMIT

MAX_LINE = 4096  # bytes, newline excluded
MAX_MSG_ID = 64


class BadFrame(ValueError):
    """A line on the wire that is not a valid frame; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Hello:
    sender: int


@dataclass(frozen=True, slots=True)
class Message:
    sender: int
    msg_id: str
    lamport: int
    vc: dict[str, int]


@dataclass(frozen=True, slots=True)
class Ready:
    """The sender is connected to every peer; it proposes a start time."""

    sender: int
    start_at: float


@dataclass(frozen=True, slots=True)
class Bye:
    """The sender has ticked its last tick: nothing more will come from it."""

    sender: int


@dataclass(frozen=True, slots=True)
class Ping:
    """The sender's link heard nothing for a while: is the receiver alive?"""

    sender: int


@dataclass(frozen=True, slots=True)
class Ack:
    """Sent back on a link: the receiver holds the first `count` messages sent on it."""

    sender: int
    count: int


Frame = Hello | Message | Ready | Bye | Ping | Ack
Control = Hello | Ready | Bye | Ping | Ack


class Oversized:
    """Marker yielded by LineSplitter in place of a line over the limit."""


OVERSIZED = Oversized()


class LineSplitter:
    """Splits a byte stream into lines; a line over the limit becomes OVERSIZED."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._discarding = False  # inside a line already reported as oversized

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if not self._discarding and len(self._buffer) > self._limit:
                    out.append(OVERSIZED)
                    self._discarding = True
                if self._discarding:
                    self._buffer.clear()
                return out
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False  # the tail of the oversized line
            elif len(line) > self._limit:
                out.append(OVERSIZED)
            else:
                out.append(line)

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line held so far."""
        return len(self._buffer)


@dataclass(frozen=True, slots=True)
class Codec:
    """Encodes and checks frames for one VM of one run (and its optional key)."""

    run: str
    me: int
    vms: int
    auth_key: bytes | None = None

    def encode(self, frame: Control) -> bytes:
        """A control frame, as one line."""
        body: dict[str, Any] = {"run": self.run, "from": frame.sender}
        match frame:
            case Hello():
                body["type"] = "hello"
            case Ready():
                body |= {"type": "ready", "start_at": frame.start_at}
            case Bye():
                body["type"] = "bye"
            case Ping():
                body["type"] = "ping"
            case Ack():
                body |= {"type": "ack", "count": frame.count}
        return self._seal(body) + b"\n"

    def encode_message(self, to: int, msg: Message) -> bytes:
        """A message to one peer, as one line."""
        body = {"type": "msg", "run": self.run, "from": msg.sender, "to": to}
        body |= {"msg_id": msg.msg_id, "lamport": msg.lamport, "vc": msg.vc}
        return self._seal(body) + b"\n"

    def _seal(self, body: dict[str, Any]) -> bytes:
        if self.auth_key is None:
            return orjson.dumps(body)
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        body["mac"] = hmac.new(self.auth_key, canonical, hashlib.sha256).hexdigest()
        return orjson.dumps(body)

    def decode(self, line: bytes) -> Frame:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise BadFrame(f"bad JSON: {e}") from None
        if not isinstance(obj, dict):
            raise BadFrame(f"not a JSON object but {type(obj).__name__}")
        if self.auth_key is not None:
            self._check_mac(obj)
        kind = obj.get("type")
        if obj.get("run") != self.run:
            raise BadFrame(f"frame for another run: {_short(obj.get('run'))}")
        sender = _vm_id(obj, "from", self.vms)
        if sender == self.me:
            raise BadFrame(f"unknown sender {sender}: that is this VM")
        match kind:
            case "hello":
                return Hello(sender)
            case "bye":
                return Bye(sender)
            case "ping":
                return Ping(sender)
            case "ack":
                return Ack(sender, _clock(obj.get("count"), "count"))
            case "ready":
                start_at = obj.get("start_at")
                if not isinstance(start_at, int | float) or isinstance(start_at, bool):
                    raise BadFrame(f"start_at is not a number: {_short(start_at)}")
                if not math.isfinite(start_at):
                    raise BadFrame(f"start_at is not finite: {start_at}")
                return Ready(sender, float(start_at))
            case "msg":
                if _vm_id(obj, "to", self.vms) != self.me:
                    raise BadFrame(f"message for VM {obj['to']}, not this one")
                msg_id = obj.get("msg_id")
                if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_MSG_ID:
                    raise BadFrame(f"msg_id is not a string of 1-64 chars: {_short(msg_id)}")
                return Message(sender, msg_id, _clock(obj.get("lamport"), "lamport"), self._vc(obj))
            case _:
                raise BadFrame(f"unknown frame type {_short(kind)}")

    def _vc(self, obj: dict[str, Any]) -> dict[str, int]:
        vc = obj.get("vc")
        if not isinstance(vc, dict):
            raise BadFrame(f"vc is not an object: {_short(vc)}")
        for key, value in vc.items():
            if not (key.isdecimal() and key == str(int(key)) and int(key) < self.vms):
                raise BadFrame(f"vc key {_short(key)} is not a VM id of this run")
            _clock(value, f"vc[{key}]")
        return vc

    def _check_mac(self, obj: dict[str, Any]) -> None:
        assert self.auth_key is not None
        mac = obj.pop("mac", None)
        if not isinstance(mac, str):
            raise BadFrame("missing mac (this run requires authentication)")
        canonical = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        expected = hmac.new(self.auth_key, canonical, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            raise BadFrame("bad mac: frame not from this trial")


def _vm_id(obj: dict[str, Any], key: str, vms: int) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFrame(f"{key} is not an integer VM id: {_short(value)}")
    if not 0 <= value < vms:
        raise BadFrame(f"unknown sender {value}" if key == "from" else f"unknown VM {value}")
    return value


def _clock(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFrame(f"{name} is not an integer: {_short(value)}")
    if not 0 <= value < CLOCK_LIMIT:
        raise BadFrame(f"{name} outside [0, 2^53): {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
