"""The log lines as analysis reads them: narrow msgspec Structs derived from the vocabulary.

Each event's Struct keeps only the keys analysis reads, with the vocabulary's
names, wire names, types and defaults, so the schema is still written once
(vm_node/vocabulary.py). Three keys are tightened per log file: `vm` and
`incarnation` must be the file name's, `run` the trial's, and `vc` is a Struct
with exactly one key per VM. msgspec then does in C what a hand-written check
would do in Python; whatever it rejects goes to the line-by-line path, which
names the reason (logfile.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from analysis.load.columns import CODE
from vm_node.vocabulary import LINE_TYPES, TICK_EVENTS, Event

# The keys analysis reads beyond the common ones, per event.
READS: dict[Event, tuple[str, ...]] = {
    Event.START: ("config",),
    Event.READY: ("start_at",),
    Event.INTERNAL: ("tick", "behind_s"),
    Event.SEND: ("tick", "behind_s", "to", "msg_ids"),
    Event.RECEIVE: ("tick", "behind_s", "sender", "msg_id", "msg_lamport", "jump"),
    Event.SEND_FAILED: ("to", "msg_id"),
    Event.BAD_FRAME: (),
    Event.PEER_DOWN: (),
    Event.PEER_UP: (),
    Event.FAULT: ("kind", "to", "msg_id"),
    Event.STOP: ("ticks", "sent", "received", "dropped", "reason", "missing_byes"),
}
NO_TICK = -1  # the `tick` of a line that is not a tick
_COMMON = ("timestamp", "seq", "run", "vm", "incarnation", "lamport", "vc", "queue_len")


@dataclass(frozen=True, slots=True)
class FileShape:
    """What every line of one file must agree with; None run: any run id."""

    vm: int
    incarnation: int
    run: str | None
    vms: int


# Integers are what numpy columns hold: a larger one is a bad line, named as such.
Int64: TypeAlias = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_TIGHTER: dict[Any, Any] = {int: Int64, list[int]: list[Int64], int | None: Int64 | None}
# Keys the vocabulary requires that older logs (and hand-made ones) may lack: the
# type and default analysis reads them with.
_LENIENT: dict[str, tuple[Any, Any]] = {
    "missing_byes": (list[Int64] | None, None),
    "reason": (str | None, None),
    "kind": (str | None, None),
    "behind_s": (float | None, 0.0),  # absent on a tick that ran on time
}


# What `LineTypes.numbers` gives of every line, in this order.
NUMBERS = ("event_code", "timestamp", "seq", "lamport", "queue_len", "tick", "behind_s")


@dataclass(frozen=True, slots=True)
class LineTypes:
    """Decoders of one line and of a block of lines joined as a JSON array; each Struct's code;
    `numbers(line)`: the line's NUMBERS as one tuple, for one pass."""

    line: msgspec.json.Decoder[Any]
    block: msgspec.json.Decoder[list[Any]]
    code: dict[type, int]
    numbers: Callable[[Any], tuple[Any, ...]]


@cache
def line_types(shape: FileShape) -> LineTypes:
    """The narrow Structs for the lines of files of this shape."""
    tightened: dict[str, Any] = {
        "vm": Literal[shape.vm],
        "incarnation": Literal[shape.incarnation],
        "run": Any if shape.run is None else Literal[shape.run],
        "vc": vector_clock(shape.vms),
    }
    code: dict[type, int] = {}
    for event, keys in READS.items():
        wanted = set(_COMMON) | set(keys)
        fields = [f for f in msgspec.structs.fields(LINE_TYPES[event.value]) if f.name in wanted]
        struct = msgspec.defstruct(
            f"Narrow{LINE_TYPES[event.value].__name__}",
            [_field(f, tightened) for f in fields],
            rename={f.name: f.encode_name for f in fields},
            tag_field="event",
            tag=event.value,
            kw_only=True,
            frozen=True,
            gc=False,
        )
        if event not in TICK_EVENTS:
            # Class attributes, not fields: every line answers `tick` and `behind_s`
            # (and `event_code`, below), so one pass gathers them; a key of that name
            # on such a line is ignored.
            struct.tick = NO_TICK  # type: ignore[attr-defined]
            struct.behind_s = 0.0  # type: ignore[attr-defined]
        struct.event_code = CODE[event.value]  # type: ignore[attr-defined]
        code[struct] = CODE[event.value]
    line = union_of(tuple(code))
    return LineTypes(
        msgspec.json.Decoder(line),
        msgspec.json.Decoder(list[line]),  # type: ignore[valid-type]
        code,
        attrgetter(*NUMBERS),
    )


def _field(info: msgspec.structs.FieldInfo, tightened: dict[str, Any]) -> tuple[Any, ...]:
    """(name, type[, default]) of a vocabulary field as analysis reads it."""
    if info.name in _LENIENT:
        return (info.name, *_LENIENT[info.name])
    if info.name in tightened:
        return (info.name, tightened[info.name])
    kind = _TIGHTER.get(info.type, info.type)
    return (info.name, kind) if info.required else (info.name, kind, info.default)


def union_of(types: tuple[type, ...]) -> Any:
    """`A | B | ...` of the given Structs, for a decoder's type."""
    result: Any = types[0]
    for t in types[1:]:
        result = result | t
    return result


@cache
def vector_clock(vms: int) -> type[msgspec.Struct]:
    """A Struct with exactly the keys "0" .. str(vms - 1), as attributes vm0, vm1, ..."""
    names = [f"vm{i}" for i in range(vms)]
    return msgspec.defstruct(
        f"VectorClock{vms}",
        [(name, int) for name in names],
        rename={name: str(i) for i, name in enumerate(names)},
        forbid_unknown_fields=True,
        frozen=True,
        gc=False,
    )
