"""One writer per trial directory.

Running a trial again replaces its directory, so two clocklab commands running
the same trial into the same --out would delete each other's logs. Each holds
an advisory lock beside the directory while its trial runs; the kernel drops
it when the process ends, however it ends, so a crashed run never blocks the
next one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import RunDirBusy


@contextmanager
def sole_writer(out: Path, experiment: str, trial: int) -> Iterator[None]:
    """Hold `out/experiment/.trial-N.lock` for the trial; RunDirBusy if another holds it."""
    parent = out / experiment
    parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(parent / f".trial-{trial}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise RunDirBusy(parent / f"trial-{trial}", holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # only to name the holder
        yield
    finally:
        os.close(fd)  # closing releases the lock
