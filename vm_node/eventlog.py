"""The VM's structured log: one JSON line per event, to the one stream the backend collects.

structlog is the logging library; its renderer builds the line's typed value
(vm_node.vocabulary) and encodes it with msgspec. Each line goes out with a
single unbuffered write to one stream, the log file (`log_stream=file`, as
the local and Compose backends collect it) or stdout (`stdout`, as Swarm
does): a line is out as soon as the event happened, and a VM killed by any
signal leaves only complete lines behind.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import msgspec
import structlog
from msgspec import UnsetType

from vm_node.config import LogStream
from vm_node.logname import log_name
from vm_node.vocabulary import LINE_TYPES, Event, InternalLine, LogLine, SendLine, VectorClock

STDOUT = 1


class LineSink:
    """A structlog logger that writes each rendered line with one os.write."""

    def __init__(self, fd: int, owned: bool) -> None:
        self._fd = fd
        self._owned = owned  # a file we opened (stdout is not ours to close)

    @classmethod
    def open(cls, stream: LogStream, log_dir: str, vm: int, incarnation: int) -> LineSink:
        if stream is LogStream.STDOUT:
            return cls(STDOUT, owned=False)
        path = os.path.join(log_dir, log_name(vm, incarnation))
        return cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), owned=True)

    def msg(self, line: bytes | bytearray) -> None:
        try:  # noqa: SIM105 (per line: suppress() would cost a context manager each)
            os.write(self._fd, line)
        except BrokenPipeError:  # stdout gone: nobody is collecting the log any more
            pass

    info = msg

    def close(self) -> None:
        if self._owned:
            os.close(self._fd)


class LineLogger(structlog.BoundLoggerBase):
    """structlog's custom-wrapper fast path: one method that takes a whole typed line.

    No keyword arguments to gather and no level to filter: the line is the
    event, and the processor chain (only the renderer) encodes it.
    """

    def write(self, line: LogLine) -> None:
        args, _ = self._process_event("msg", line, {})  # type: ignore[arg-type]
        self._logger.msg(*args)


class EventLog:
    """Writes the events of one VM incarnation, each with its clocks and queue."""

    def __init__(
        self, sink: LineSink, *, run: str, vm: int, incarnation: int, clock_offset: float = 0.0
    ) -> None:
        """`clock_offset` seconds are added to every timestamp: a host whose clock is off."""
        self._clock_offset = clock_offset
        encoder = msgspec.json.Encoder()
        buffer = bytearray()  # reused: the sink has written it before the next line

        def render(_: Any, __: str, event_dict: structlog.typing.EventDict) -> bytearray:
            encoder.encode_into(event_dict["event"], buffer)
            buffer.append(0x0A)  # the newline goes out in the same write
            return buffer

        self._sink = sink
        self._seq = itertools.count()
        self._run, self._vm, self._incarnation = run, vm, incarnation
        logger = structlog.wrap_logger(
            sink, processors=[render], wrapper_class=LineLogger, cache_logger_on_first_use=True
        )
        self._write = logger.bind().write  # the bound logger itself, not its lazy proxy

    def event(
        self,
        event: Event,
        lamport: int,
        vc: VectorClock,
        queue_len: int,
        timestamp: float | None,
        **fields: Any,
    ) -> None:
        """Log one event with the clocks and queue length after it (at `timestamp`, or now).

        The caller renders the vector clock: a send tick's line and its messages share one.
        """
        self._write(
            LINE_TYPES[event](
                timestamp=(timestamp or time.time()) + self._clock_offset,
                seq=next(self._seq),
                run=self._run,
                vm=self._vm,
                incarnation=self._incarnation,
                lamport=lamport,
                vc=vc,
                queue_len=queue_len,
                **fields,
            )
        )

    # Most ticks are internal events or sends. Their lines are built directly, because
    # gathering keyword arguments into a dict and spreading them again costs on every tick.

    def internal(
        self,
        lamport: int,
        vc: VectorClock,
        timestamp: float,
        tick: int,
        behind_s: float | UnsetType,
    ) -> None:
        """An internal event's line (its inbox is empty)."""
        self._write(
            InternalLine(
                timestamp=timestamp + self._clock_offset,
                seq=next(self._seq),
                run=self._run,
                vm=self._vm,
                incarnation=self._incarnation,
                lamport=lamport,
                vc=vc,
                queue_len=0,
                tick=tick,
                behind_s=behind_s,
            )
        )

    def send(
        self,
        lamport: int,
        vc: VectorClock,
        timestamp: float,
        tick: int,
        behind_s: float | UnsetType,
        to: list[int],
        msg_ids: list[str],
    ) -> None:
        """A send's line (its inbox is empty)."""
        self._write(
            SendLine(
                timestamp=timestamp + self._clock_offset,
                seq=next(self._seq),
                run=self._run,
                vm=self._vm,
                incarnation=self._incarnation,
                lamport=lamport,
                vc=vc,
                queue_len=0,
                tick=tick,
                behind_s=behind_s,
                to=to,
                msg_ids=msg_ids,
            )
        )

    def close(self) -> None:
        self._sink.close()
