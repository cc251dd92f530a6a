"""The VM's structured log: one JSON line per event, to the one stream the backend collects.

structlog is the logging library; its renderer encodes each line's typed
value (vm_node.vocabulary, as vm_node.core makes it) with msgspec. Each line
goes out with a single unbuffered write to one stream, the log file
(`log_stream=file`, as the local and Compose backends collect it) or stdout
(`stdout`, as Swarm does): a line is out as soon as the event happened, and a
VM killed by any signal leaves only complete lines behind. With `file+stdout`
(Swarm keeping each node's logs on a volume) a line goes to the file first,
then to stdout, so the file holds at least every line stdout carried.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import structlog

from vm_node.config import LogStream
from vm_node.logname import log_name
from vm_node.vocabulary import LogLine

STDOUT = 1


class LineSink:
    """A structlog logger that writes each rendered line with one os.write."""

    def __init__(self, fd: int, owned: bool) -> None:
        self._fd = fd
        self._owned = owned  # a file we opened (stdout is not ours to close)

    @classmethod
    def open(cls, stream: LogStream, log_dir: str, vm: int, incarnation: int) -> LineWriter:
        if stream is LogStream.STDOUT:
            return cls(STDOUT, owned=False)
        path = os.path.join(log_dir, log_name(vm, incarnation))
        file = cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), owned=True)
        if stream is LogStream.FILE_AND_STDOUT:
            return TeeSink(file, cls(STDOUT, owned=False))
        return file

    def msg(self, line: bytes | bytearray) -> None:
        try:  # noqa: SIM105 (per line: suppress() would cost a context manager each)
            os.write(self._fd, line)
        except BrokenPipeError:  # stdout gone: nobody is collecting the log any more
            pass

    info = msg

    def close(self) -> None:
        if self._owned:
            os.close(self._fd)


class TeeSink:
    """Each line to `first`, then to `second`: what `second` carried, `first` holds."""

    def __init__(self, first: LineSink, second: LineSink) -> None:
        self._first = first
        self._second = second

    def msg(self, line: bytes | bytearray) -> None:
        self._first.msg(line)
        self._second.msg(line)

    info = msg

    def close(self) -> None:
        self._first.close()
        self._second.close()


class LineLogger(structlog.BoundLoggerBase):
    """structlog's custom-wrapper fast path: one method that takes a whole typed line.

    No keyword arguments to gather and no level to filter: the line is the
    event, and the processor chain (only the renderer) encodes it.
    """

    def write(self, line: LogLine) -> None:
        args, _ = self._process_event("msg", line, {})  # type: ignore[arg-type]
        self._logger.msg(*args)


class LineWriter(Protocol):
    """Where rendered lines go: each line's bytes, reused for the next line once written."""

    def msg(self, line: bytes | bytearray) -> None: ...

    def close(self) -> None: ...


class EventLog:
    """Writes a VM's typed log lines (vm_node.core makes them), one JSON line each."""

    def __init__(self, sink: LineWriter) -> None:
        encoder = msgspec.json.Encoder()
        buffer = bytearray()  # reused: the sink has written it before the next line

        def render(_: Any, __: str, event_dict: structlog.typing.EventDict) -> bytearray:
            encoder.encode_into(event_dict["event"], buffer)
            buffer.append(0x0A)  # the newline goes out in the same write
            return buffer

        self._sink = sink
        logger = structlog.wrap_logger(
            sink, processors=[render], wrapper_class=LineLogger, cache_logger_on_first_use=True
        )
        # The bound logger's own method, not its lazy proxy: one call per line.
        self.write: Callable[[LogLine], None] = logger.bind().write

    def close(self) -> None:
        self._sink.close()
