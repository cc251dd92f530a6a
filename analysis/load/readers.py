"""Reading the planned blocks: in this process, and for a large trial in a forked helper too.

Decoding is CPU-bound Python, so a second core halves it. This process takes
blocks from the front and the helper from the back, one at a time, until they
meet: both finish together however busy either core is. The helper fills the
shared `LinesSink` and lets go of the pages it filled (they stay this
process's); it sends back only the messages and edges, from a thread of its
own, so that it never waits for this process, which takes them between its
blocks.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext

from analysis.load.logfile import BlockRead, Expected, read_block
from analysis.load.plan import ArrayBuffer, Block
from analysis.load.sink import LinesSink

HELPER_BYTES = 16 << 20  # below this, starting a helper costs more than it saves
BATCH_BYTES = 4 << 20  # what the helper reads before it sends the messages back

_Reads = dict[int, BlockRead]  # by block index


def read_blocks(
    files: Sequence[Expected], blocks: Sequence[Block], sink: LinesSink, helpers: int | None = None
) -> list[BlockRead]:
    """Every block read into `sink`, in order; `helpers`: processes beside this one (0 or 1)."""
    if helpers is None:
        helpers = 1 if _worth_a_helper(blocks) else 0
    if not helpers or len(blocks) < 2:
        buffer = ArrayBuffer()
        return [_read(files, block, sink, buffer) for block in blocks]
    fork = multiprocessing.get_context("fork")  # the helper inherits the sink, not a copy
    left = _Untaken(len(blocks), fork)
    receiver, sender = fork.Pipe(duplex=False)
    helper = fork.Process(target=_help, args=(files, blocks, sink, left, sender), daemon=True)
    helper.start()
    sender.close()  # the helper's end: the pipe ends when the helper does
    reads: _Reads = {}
    helping = True
    buffer = ArrayBuffer()
    try:
        while (i := left.front()) is not None:
            reads[i] = _read(files, blocks[i], sink, buffer)
            while helping and receiver.poll():
                helping = _receive(receiver, reads)
        while helping:
            helping = _receive(receiver, reads)
    except BaseException:
        helper.terminate()
        raise
    finally:
        helper.join()
    # Blocks the helper took and never sent back (it died: out of memory?) are read here.
    return [reads[i] if i in reads else _read(files, b, sink, buffer) for i, b in enumerate(blocks)]


def _receive(receiver: Connection, reads: _Reads) -> bool:
    """Take one batch of the helper's reads; False once it has ended."""
    try:
        reads.update(receiver.recv())
    except (EOFError, OSError):  # OSError: it died in the middle of a batch
        return False
    return True


class _Untaken:
    """The blocks no process has taken yet, [first, end): this process takes the first,
    the helper the last.

    No lock (a helper that died holding one would hang this process): each process
    moves only its own end, so a race where they meet can only have both read the
    same block, which they read alike.
    """

    def __init__(self, count: int, context: BaseContext) -> None:
        self._ends = context.RawArray("q", [0, count])  # shared memory

    def front(self) -> int | None:
        first = self._ends[0]
        if first >= self._ends[1]:
            return None
        self._ends[0] = first + 1
        return int(first)

    def back(self) -> int | None:
        end = self._ends[1] - 1
        if end < self._ends[0]:
            return None
        self._ends[1] = end
        return int(end)


def _help(
    files: Sequence[Expected],
    blocks: Sequence[Block],
    sink: LinesSink,
    left: _Untaken,
    sender: Connection,
) -> None:
    """The helper: blocks from the back, their messages to `sender` every BATCH_BYTES."""
    outbox: queue.SimpleQueue[_Reads | None] = queue.SimpleQueue()
    mailer = threading.Thread(target=_send_all, args=(outbox, sender))
    mailer.start()
    batch: _Reads = {}
    size = 0
    buffer = ArrayBuffer()
    while (i := left.back()) is not None:
        batch[i] = _read(files, blocks[i], sink, buffer)
        sink.release(blocks[i].row)  # every row from this block on is filled
        size += blocks[i].size
        if size >= BATCH_BYTES:
            outbox.put(batch)
            batch, size = {}, 0
    outbox.put(batch)
    outbox.put(None)
    mailer.join()


def _send_all(outbox: queue.SimpleQueue[_Reads | None], sender: Connection) -> None:
    while (batch := outbox.get()) is not None:
        sender.send(batch)
    sender.close()


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


def _read(
    files: Sequence[Expected], block: Block, sink: LinesSink, buffer: ArrayBuffer
) -> BlockRead:
    return read_block(files[block.file], block, buffer, sink.place)
