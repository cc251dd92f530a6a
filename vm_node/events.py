"""The log schema's vocabulary: event kinds and the keys every line carries.

This module is the contract between vm_node (which writes the logs) and
analysis (which reads them); see PRODUCT.md section 3.
"""

from enum import StrEnum
from typing import TypeAlias

VectorClock: TypeAlias = dict[str, int]

# Clocks on the wire and in logs are non-negative integers below 2**53, so
# that every JSON reader (JavaScript included) represents them exactly.
CLOCK_LIMIT = 2**53


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

# Keys on every line.
COMMON_KEYS = (
    "event",
    "timestamp",
    "run",
    "vm",
    "incarnation",
    "seq",
    "lamport",
    "vc",
    "queue_len",
)
