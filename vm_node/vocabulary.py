"""clocklab's vocabulary: the frames on the wire and the lines in the logs, as typed values.

One module, the contract between the VMs (which send frames and write lines)
and analysis (which reads the lines); docs/wire.md and docs/log-schema.md describe them.
Both are msgspec Structs in tagged unions: `type` names a frame, `event` a
log line. It imports msgspec and nothing else of the project, so any package
can import it without side effects.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, TypeAlias

import msgspec

# Clocks on the wire and in logs are non-negative integers below 2**53, so
# that every JSON reader (JavaScript included) represents them exactly.
CLOCK_LIMIT = 2**53
MAX_MSG_ID = 64

Clock: TypeAlias = Annotated[int, msgspec.Meta(ge=0, lt=CLOCK_LIMIT)]
VmId: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]
VectorClock: TypeAlias = dict[str, Clock]  # keys: VM ids as decimal strings
MsgId: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MSG_ID)]
WallTime: TypeAlias = Annotated[float, msgspec.Meta(ge=0, lt=CLOCK_LIMIT)]  # Unix seconds


# --- frames: newline-delimited JSON between VMs (docs/wire.md) ---


class _Sealed(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    # kw_only moves `mac` behind every other field: the frame reads type, run, from first.
    mac: str | msgspec.UnsetType = msgspec.UNSET  # HMAC-SHA256 of the canonical form


class _Frame(_Sealed, frozen=True, kw_only=False):
    run: str
    sender: VmId = msgspec.field(name="from")


class Hello(_Frame, frozen=True, tag="hello"):
    """The first frame on a connection: who is calling."""


class Message(_Frame, frozen=True, tag="msg"):
    to: VmId
    msg_id: MsgId
    lamport: Clock
    vc: VectorClock


class Ready(_Frame, frozen=True, tag="ready"):
    """The sender is connected to every peer; it proposes a start time."""

    start_at: WallTime


class Bye(_Frame, frozen=True, tag="bye"):
    """The sender has ticked its last tick: nothing more will come from it."""


class Ping(_Frame, frozen=True, tag="ping"):
    """The sender's link heard nothing for a while: is the receiver alive?"""


class Ack(_Frame, frozen=True, tag="ack"):
    """Sent back on a link: the receiver holds the first `count` messages sent on it."""

    count: Clock


Frame: TypeAlias = Hello | Message | Ready | Bye | Ping | Ack


# --- log lines: one JSON object per event (docs/log-schema.md) ---


class Event(StrEnum):
    START = "start"
    READY = "ready"
    INTERNAL = "internal"
    SEND = "send"
    RECEIVE = "receive"
    SEND_FAILED = "send_failed"
    BAD_FRAME = "bad_frame"
    PEER_DOWN = "peer_down"
    PEER_UP = "peer_up"
    FAULT = "fault"
    STOP = "stop"


# Exactly one of these is written per tick; each carries `tick` (its index).
TICK_EVENTS = frozenset({Event.INTERNAL, Event.SEND, Event.RECEIVE})


class _Line(msgspec.Struct, frozen=True, kw_only=True, tag_field="event"):
    """The keys on every line: the clocks and the inbox after the event."""

    timestamp: float
    seq: int
    run: str
    vm: int
    incarnation: int
    lamport: int
    vc: dict[str, int]
    queue_len: int


class StartLine(_Line, frozen=True, kw_only=True, tag=Event.START.value):
    config: dict[str, Any]  # the VM's whole configuration, never its key


class ReadyLine(_Line, frozen=True, kw_only=True, tag=Event.READY.value):
    start_at: float
    resumed: bool | msgspec.UnsetType = msgspec.UNSET  # only on a restarted VM


class _TickLine(_Line, frozen=True, kw_only=True):
    tick: int
    behind_s: float | msgspec.UnsetType = msgspec.UNSET  # only on a tick run late


class InternalLine(_TickLine, frozen=True, kw_only=True, tag=Event.INTERNAL.value):
    pass


class SendLine(_TickLine, frozen=True, kw_only=True, tag=Event.SEND.value):
    to: list[int]
    msg_ids: list[str]  # in the order of `to`


class ReceiveLine(_TickLine, frozen=True, kw_only=True, tag=Event.RECEIVE.value):
    sender: int = msgspec.field(name="from")
    msg_id: str
    msg_lamport: int
    jump: int  # clock after minus clock before


class SendFailedLine(_Line, frozen=True, kw_only=True, tag=Event.SEND_FAILED.value):
    to: int
    msg_id: str
    reason: str


class BadFrameLine(_Line, frozen=True, kw_only=True, tag=Event.BAD_FRAME.value):
    reason: str
    peer: str  # host:port of the connection
    sender: int | None = msgspec.field(name="from")  # null until the connection said hello


class PeerUpLine(_Line, frozen=True, kw_only=True, tag=Event.PEER_UP.value):
    peer: int


class PeerDownLine(_Line, frozen=True, kw_only=True, tag=Event.PEER_DOWN.value):
    peer: int
    reason: str


class FaultLine(_Line, frozen=True, kw_only=True, tag=Event.FAULT.value):
    """A link condition lost or duplicated a message of this VM's."""

    kind: str
    to: int
    msg_id: str


class StopLine(_Line, frozen=True, kw_only=True, tag=Event.STOP.value):
    reason: str
    ticks: int
    sent: int
    received: int
    dropped: int
    bad_frames: int
    unacked: int
    missing_byes: list[int]
    rate_configured: float
    rate_achieved: float | None  # ticks per simulated second; null with fewer than two ticks


LogLine: TypeAlias = (
    StartLine
    | ReadyLine
    | InternalLine
    | SendLine
    | ReceiveLine
    | SendFailedLine
    | BadFrameLine
    | PeerUpLine
    | PeerDownLine
    | FaultLine
    | StopLine
)
LINE_TYPES: dict[str, type[LogLine]] = {str(t.__struct_config__.tag): t for t in LogLine.__args__}
