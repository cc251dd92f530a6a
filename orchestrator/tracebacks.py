"""Where the traceback of an unexpected error (a bug) is kept.

The user sees one line naming the file; `clocklab --debug` prints the traceback
instead. A trial keeps it in its run directory's orchestrator.log, beside the
faults; a command without a run writes a file of its own in the temp directory.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

import orjson


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def append_to_log(error: BaseException, log: Path) -> Path:
    """Append the traceback to a trial's orchestrator.log, as one JSON line like the faults'."""
    line = {
        "event": "unexpected_error",
        "timestamp": time.time(),
        "error": f"{type(error).__name__}: {error}",
        "traceback": formatted(error),
    }
    with log.open("ab") as out:
        out.write(orjson.dumps(line) + b"\n")
    return log


def write_file(error: BaseException, command: str) -> Path:
    """Write the traceback to a new file in the temp directory, named after the command."""
    fd, name = tempfile.mkstemp(prefix=f"clocklab-{command}-", suffix=".traceback")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(formatted(error))
    return Path(name)
