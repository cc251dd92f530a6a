"""Reading the planned blocks: in this process, and for a large trial in a forked helper too.

Decoding is CPU-bound Python, so a second core halves it: the helper reads
the second half of the blocks (by bytes) into the shared `LinesSink` while
this process reads the first, and sends back only the messages and edges.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import accumulate

from analysis.load.logfile import BlockRead, Expected, read_block
from analysis.load.plan import Block
from analysis.load.sink import LinesSink

HELPER_BYTES = 16 << 20  # below this, starting a helper costs more than it saves

_adopted: tuple[Sequence[Expected], LinesSink] | None = None  # a helper's files and sink


def read_blocks(
    files: Sequence[Expected], blocks: Sequence[Block], sink: LinesSink, helpers: int | None = None
) -> list[BlockRead]:
    """Every block read into `sink`, in order; `helpers`: processes beside this one (0 or 1)."""
    if helpers is None:
        helpers = 1 if _worth_a_helper(blocks) else 0
    if not helpers or len(blocks) < 2:
        return _read(files, blocks, sink)
    sizes = list(accumulate(b.size for b in blocks))
    half = next(i for i, size in enumerate(sizes) if size >= sizes[-1] / 2) + 1
    half = min(half, len(blocks) - 1)
    fork = multiprocessing.get_context("fork")  # the helper inherits the sink, not a copy
    with ProcessPoolExecutor(
        1, mp_context=fork, initializer=_adopt, initargs=(files, sink)
    ) as pool:
        second = pool.submit(_read_adopted, blocks[half:])
        first = _read(files, blocks[:half], sink)
        try:
            return first + second.result()
        except BrokenProcessPool:  # the helper died (out of memory?): read its half here
            return first + _read(files, blocks[half:], sink)


def _worth_a_helper(blocks: Sequence[Block]) -> bool:
    return (
        sum(b.size for b in blocks) >= HELPER_BYTES
        and _cpus() > 1
        and "fork" in multiprocessing.get_all_start_methods()
        # Forking a process that runs other threads could copy a lock some thread holds.
        and threading.active_count() == 1
    )


def _cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read(files: Sequence[Expected], blocks: Sequence[Block], sink: LinesSink) -> list[BlockRead]:
    return [read_block(files[block.file], block, sink) for block in blocks]


def _adopt(files: Sequence[Expected], sink: LinesSink) -> None:
    global _adopted
    _adopted = (files, sink)


def _read_adopted(blocks: Sequence[Block]) -> list[BlockRead]:
    assert _adopted is not None, "a helper reads only after _adopt"
    files, sink = _adopted
    return _read(files, blocks, sink)
