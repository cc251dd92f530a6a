"""The wire format: newline-delimited JSON frames, validated before use.

`LineSplitter` turns a byte stream into lines of at most MAX_LINE bytes;
`Codec` turns one line into a typed frame (vm_node.vocabulary) or raises
BadFrame with the reason, which names the field and its path as msgspec's
errors do (`... - at `$.lamport``). Nothing here touches a socket or a clock.

With a key, every frame carries `mac`: the HMAC-SHA256 of its canonical form,
the frame without `mac` as compact JSON with keys sorted at every level.
"""

from __future__ import annotations

import msgspec

from vm_node.errors import BadFrame
from vm_node.seal import Seal
from vm_node.vocabulary import Ack, Bye, Frame, Hello, Message, Ping, Ready, VectorClock

MAX_LINE = 4096  # bytes, newline excluded
TOO_LONG = f"line over {MAX_LINE} bytes"  # why such a line is refused
# Bytes a connection reads at a time, into a buffer of its own (asyncio.BufferedProtocol),
# so that a read allocates nothing. Frames are small: a busy peer's take a few reads.
READ_BUFFER = 4096


class Oversized:
    """Marker yielded by LineSplitter in place of a line over the limit."""


OVERSIZED = Oversized()


class LineSplitter:
    """Splits a byte stream into lines; a line over the limit becomes OVERSIZED."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._discarding = False  # inside a line already reported as oversized

    def feed(self, data: bytes | memoryview) -> list[bytes | Oversized]:
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


class Codec:
    """Encodes this VM's frames and checks the frames it receives, for one run (and key)."""

    __slots__ = (
        "_canonical",
        "_decoder",
        "_encoder",
        "_seal",
        "_vm_keys",
        "auth_key",
        "me",
        "run",
        "vms",
    )

    def __init__(self, run: str, me: int, vms: int, auth_key: bytes | None = None) -> None:
        self.run, self.me, self.vms, self.auth_key = run, me, vms, auth_key
        self._decoder = msgspec.json.Decoder(Frame)
        self._encoder = msgspec.json.Encoder()
        self._canonical = msgspec.json.Encoder(order="sorted")
        self._vm_keys = frozenset(str(vm) for vm in range(vms))
        self._seal = Seal(auth_key) if auth_key is not None else None

    # --- this VM's frames, one line each ---

    def hello(self) -> bytes:
        return self.encode(Hello(self.run, self.me))

    def ready(self, start_at: float) -> bytes:
        return self.encode(Ready(self.run, self.me, start_at))

    def bye(self) -> bytes:
        return self.encode(Bye(self.run, self.me))

    def ping(self) -> bytes:
        return self.encode(Ping(self.run, self.me))

    def ack(self, count: int) -> bytes:
        return self.encode(Ack(self.run, self.me, count))

    def message(self, to: int, msg_id: str, lamport: int, vc: VectorClock) -> bytes:
        return self.encode(Message(self.run, self.me, to, msg_id, lamport, vc))

    def encode(self, frame: Frame) -> bytes:
        if self.auth_key is not None:
            frame = msgspec.structs.replace(frame, mac=self._mac(frame))
        return self._encoder.encode(frame) + b"\n"

    # --- frames from peers ---

    def decode(self, line: bytes) -> Frame:
        try:
            frame = self._decoder.decode(line)
        except msgspec.ValidationError as e:
            raise BadFrame(str(e)) from None
        except msgspec.DecodeError as e:
            raise BadFrame(f"bad JSON: {e}") from None
        if self.auth_key is not None:
            frame = self._unsealed(frame)
        if frame.run != self.run:
            raise BadFrame(f"frame for another run: {_short(frame.run)} - at `$.run`")
        if frame.sender >= self.vms:
            raise BadFrame(f"unknown sender {frame.sender} - at `$.from`")
        if frame.sender == self.me:
            raise BadFrame(f"unknown sender {frame.sender}: that is this VM - at `$.from`")
        if type(frame) is Message:
            if frame.to != self.me:
                raise BadFrame(f"message for VM {frame.to}, not this one - at `$.to`")
            for key in frame.vc:
                if key not in self._vm_keys:
                    raise BadFrame(f"vc key {_short(key)} is not a VM id of this run - at `$.vc`")
        return frame

    def _unsealed(self, frame: Frame) -> Frame:
        """The frame without its mac, once the mac proved it came from this trial."""
        if isinstance(frame.mac, msgspec.UnsetType):
            raise BadFrame("missing mac (this run requires authentication)")
        unsealed = msgspec.structs.replace(frame, mac=msgspec.UNSET)
        assert self._seal is not None
        if not self._seal.matches(frame.mac, self._canonical.encode(unsealed)):
            raise BadFrame("bad mac: frame not from this trial")
        return unsealed

    def _mac(self, unsealed: Frame) -> str:
        assert self._seal is not None
        return self._seal.hexdigest(self._canonical.encode(unsealed))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
