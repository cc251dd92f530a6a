"""One writer per trial directory.

Running a trial again replaces its directory, so two clocklab commands running
the same trial into the same --out would delete each other's logs. Each holds
an advisory lock on a file beside the directory while its trial runs, and
removes the file when done. The kernel drops the lock however the process
ends, so a killed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import RunDirBusy

ATTEMPTS = 3  # each lost only to a holder that removed the file as we opened it


@contextmanager
def sole_writer(out: Path, experiment: str, trial: int) -> Iterator[None]:
    """Hold `out/experiment/.trial-N.lock` for the trial; RunDirBusy if another holds it."""
    parent = out / experiment
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".trial-{trial}.lock"
    fd = _lock(path, parent / f"trial-{trial}")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # only to name the holder
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it: a waiter then sees a stale file
        os.close(fd)


def _lock(path: Path, run_dir: Path) -> int:
    for _ in range(ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RunDirBusy(run_dir, holder) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the last holder removed it between our open and our lock: again
    raise RunDirBusy(run_dir, "")


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
