"""The log lines as analysis reads them: msgspec Structs derived from the vocabulary.

Each event's Struct keeps only the keys analysis reads, with the vocabulary's
names, wire names, types and defaults, so the schema is still written once
(vm_node/vocabulary.py). Three keys are tightened per log file: `vm` and
`incarnation` must be the file name's, and `vc` has exactly one key per VM; a
start line's open `config` is read as a `VmConfig`. msgspec then checks every
line in C; what it rejects is quarantined with a reason in words (reasons.py).
That `run` is the trial's is checked once the lines are decoded (logfile.py),
so the Structs made for a file serve the same VM's file in every trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from analysis.columns import CODE, VmConfig
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
COMMON = ("timestamp", "seq", "run", "vm", "incarnation", "lamport", "vc", "queue_len")

# Integers are what numpy columns hold: a larger one is a bad line, named as such.
Int64: TypeAlias = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_TIGHTER: dict[Any, Any] = {int: Int64, list[int]: list[Int64], int | None: Int64 | None}
# Keys the vocabulary requires that older logs (and hand-made ones) may lack: the
# type and default analysis reads them with.
_LENIENT: dict[str, tuple[Any, Any]] = {
    "missing_byes": (list[Int64] | None, None),
    "reason": (str | None, None),
    "kind": (str | None, None),
    "behind_s": (float, 0.0),  # absent on a tick that ran on time
}


# Lines that are not ticks are read with the tick of none and nothing behind, so
# that one pass over a block's lines gathers every number (logfile.py).
NO_TICK = -1
_NOT_A_TICK = [("tick", Int64, NO_TICK), ("behind_s", float, 0.0)]


@dataclass(frozen=True, slots=True)
class FileShape:
    """What every line of one file must agree with; None run: any run id."""

    vm: int
    incarnation: int
    run: str | None
    vms: int


@dataclass(frozen=True, slots=True)
class LineTypes:
    """Decoders of one line and of a JSON array of lines, and each Struct's event code."""

    line: msgspec.json.Decoder[Any]
    array: msgspec.json.Decoder[list[Any]]
    code: dict[type, int]


def line_types(shape: FileShape) -> LineTypes:
    """The Structs for the lines of files of this shape, whatever their run."""
    return _line_types(shape.vm, shape.incarnation, shape.vms)


@cache
def _line_types(vm: int, incarnation: int, vms: int) -> LineTypes:
    tightened: dict[str, Any] = {
        "vm": Literal[vm],
        "incarnation": Literal[incarnation],
        "run": Any,
        "vc": vector_clock(vms),
        "config": VmConfig,
    }
    code: dict[type, int] = {}
    for event in READS:
        fields = read_fields(event)
        struct = msgspec.defstruct(
            f"Read{LINE_TYPES[event.value].__name__}",
            [_field(f, tightened) for f in fields] + ([] if event in TICK_EVENTS else _NOT_A_TICK),
            rename={f.name: f.encode_name for f in fields},
            tag_field="event",
            tag=event.value,
            kw_only=True,
            frozen=True,
            gc=False,  # no line refers to another: the collector need not track them
        )
        code[struct] = CODE[event.value]
    line: Any = None
    for struct in code:
        line = struct if line is None else line | struct
    return LineTypes(msgspec.json.Decoder(line), msgspec.json.Decoder(list[line]), code)


@cache
def read_fields(event: Event) -> tuple[msgspec.structs.FieldInfo, ...]:
    """The vocabulary's fields of `event` that analysis reads: the same for every file,
    and slow to look up (msgspec evaluates the Struct's annotations each time)."""
    wanted = set(COMMON) | set(READS[event])
    return tuple(f for f in msgspec.structs.fields(LINE_TYPES[event.value]) if f.name in wanted)


def _field(info: msgspec.structs.FieldInfo, tightened: dict[str, Any]) -> tuple[Any, ...]:
    """(name, type[, default]) of a vocabulary field as analysis reads it."""
    if info.name in _LENIENT:
        return (info.name, *_LENIENT[info.name])
    if info.name in tightened:
        return (info.name, tightened[info.name])
    kind = _TIGHTER.get(info.type, info.type)
    return (info.name, kind) if info.required else (info.name, kind, info.default)


@cache
def vector_clock(vms: int) -> type[msgspec.Struct]:
    """A Struct with exactly the keys "0" .. str(vms - 1), as fields vm0, vm1, ..."""
    names = [f"vm{i}" for i in range(vms)]
    return msgspec.defstruct(
        f"VectorClock{vms}",
        [(name, Int64) for name in names],
        rename={name: str(i) for i, name in enumerate(names)},
        forbid_unknown_fields=True,
        frozen=True,
        gc=False,
    )
