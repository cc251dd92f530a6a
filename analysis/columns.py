"""A loaded trial: columns of numbers with one row per log line, and the messages.

Rows of `Lines` are ordered file by file (VM, then incarnation), each file in
line order, so a file's lines are one contiguous slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt

from vm_node.rundir import Manifest
from vm_node.vocabulary import TICK_EVENTS, Event

Ints: TypeAlias = npt.NDArray[np.int64]
Floats: TypeAlias = npt.NDArray[np.float64]
Codes: TypeAlias = npt.NDArray[np.int8]

# Event kinds as small integer codes, in vocabulary order.
EVENTS: tuple[Event, ...] = tuple(Event)
CODE: dict[str, int] = {event.value: i for i, event in enumerate(EVENTS)}
START = CODE[Event.START]
READY = CODE[Event.READY]
INTERNAL = CODE[Event.INTERNAL]
SEND = CODE[Event.SEND]
RECEIVE = CODE[Event.RECEIVE]
SEND_FAILED = CODE[Event.SEND_FAILED]
PEER_DOWN = CODE[Event.PEER_DOWN]
FAULT = CODE[Event.FAULT]
STOP = CODE[Event.STOP]
TICK_CODES = np.array(sorted(CODE[e] for e in TICK_EVENTS), dtype=np.int8)


def is_tick(codes: Codes) -> npt.NDArray[np.bool_]:
    """Which `codes` are ticks. A comparison per tick event: np.isin sorts, which is
    much slower on the short int8 codes of a whole trial."""
    ticks: npt.NDArray[np.bool_] = codes == TICK_CODES[0]
    for code in TICK_CODES[1:]:
        ticks |= codes == code
    return ticks


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A line that could not be read, and why."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class VmConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The part of a `start` line's config that analysis uses: the VM's whole
    configuration is there, and the other keys are passed over."""

    vms: int
    rate: float
    duration: float
    time_scale: float = 1.0
    event_range: int | None = None
    start_at: float | None = None
    clock_offset: float = 0.0  # seconds the VM added to its timestamps (`skew:`)


@dataclass(frozen=True, slots=True)
class Totals:
    """The `stop` line: what the VM says it did."""

    ticks: int
    sent: int
    received: int
    dropped: int
    queue_len: int
    reason: str | None
    missing_byes: tuple[int, ...] = ()  # peers that had not said bye: they may still have sent


@dataclass(frozen=True, slots=True)
class LogFile:
    """One VM incarnation's log: where its rows are and what its edges said."""

    path: Path
    vm: int
    incarnation: int
    first_row: int
    end_row: int
    config: VmConfig | None
    start_at: float | None
    totals: Totals | None
    start_rows: tuple[int, ...]
    stop_rows: tuple[int, ...]
    quarantined: int  # lines of this file that could not be read

    @property
    def complete(self) -> bool:
        """Every line of the file was read, and there was at least one."""
        return self.end_row > self.first_row and not self.quarantined


@dataclass(frozen=True, slots=True)
class Lines:
    """Every readable line; `tick` is -1 and `behind` 0 on lines that are not ticks."""

    file: Ints
    line: Ints
    event: Codes
    timestamp: Floats
    seq: Ints
    lamport: Ints
    queue_len: Ints
    tick: Ints
    behind: Floats
    vc: Ints  # shape (rows, vms)

    def __len__(self) -> int:
        return len(self.line)


@dataclass(frozen=True, slots=True)
class Messages:
    """One row per message: the line (`row`) that sent, received or failed it."""

    row: Ints
    peer: Ints  # the recipient for sends and failures, the sender for receives
    msg_id: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.row)


@dataclass(frozen=True, slots=True)
class Receives:
    """The messages taken from an inbox, with what the receive line says about them."""

    messages: Messages
    msg_lamport: Ints
    jump: Ints

    def __len__(self) -> int:
        return len(self.messages)


@dataclass(frozen=True, slots=True)
class TrialLog:
    """Everything one trial directory's logs say, ready for metrics and checks."""

    path: Path
    manifest: Manifest
    vms: int
    files: tuple[LogFile, ...]
    lines: Lines
    sends: Messages
    receives: Receives
    failures: Messages
    drops: Messages  # messages lost on purpose by a loss condition (`fault` lines)
    duplicates: Messages  # messages a duplicate condition sent twice (`fault` lines)
    receive_send: Ints  # for each receive, its message's index in `sends`, or -1: never sent
    failure_send: Ints  # the same for each send_failed
    repeated_sends: Ints  # indices into `sends` of the msg_ids an earlier send carried
    quarantined: tuple[Quarantined, ...]
    quarantined_count: int
    problems: tuple[str, ...]  # what made the logs incomplete or inconsistent as a whole

    @property
    def name(self) -> str:
        return f"{self.manifest.experiment}/trial-{self.manifest.trial}"

    @property
    def file_vm(self) -> Ints:
        return np.array([f.vm for f in self.files], dtype=np.int64)

    @property
    def row_vm(self) -> Ints:
        """The VM of every row."""
        return self.file_vm[self.lines.file]

    def where(self, row: int) -> str:
        """`path:line` of a row, for counter-examples."""
        return f"{self.files[self.lines.file[row]].path}:{self.lines.line[row]}"

    @property
    def start_at(self) -> float:
        """The agreed wall-clock start of tick 0."""
        agreed = [f.start_at for f in self.files if f.start_at is not None]
        if agreed:
            return min(agreed)
        configured = [f.config.start_at for f in self.files if f.config and f.config.start_at]
        if configured:
            return min(configured)
        if self.manifest.started_at is not None:
            return self.manifest.started_at
        ticks = self.lines.timestamp[self.lines.tick >= 0]
        return float(ticks.min()) if len(ticks) else 0.0

    @property
    def time_scale(self) -> float:
        scales = [f.config.time_scale for f in self.files if f.config]
        return scales[0] if scales else self.manifest.time_scale

    def sim_time(self, timestamps: Floats) -> Floats:
        """Wall-clock Unix seconds to simulated seconds since the start."""
        return (timestamps - self.start_at) * self.time_scale

    def clock_offset(self, vm: int) -> float:
        """Seconds the VM's configured skew put its timestamps ahead of true time (0 unknown)."""
        return next((f.config.clock_offset for f in self.files if f.vm == vm and f.config), 0.0)

    def rate(self, vm: int) -> float:
        """The VM's configured rate in ticks per simulated second (nan when unknown)."""
        for f in self.files:
            if f.vm == vm and f.config:
                return f.config.rate
        rates = self.manifest.rates
        return rates[vm] if vm < len(rates) else float("nan")
