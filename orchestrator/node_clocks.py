"""Each node's clock against the orchestrator's, at the start and the end of a trial.

A backend that offers `ClockNodes` names its nodes, the VMs on each, and the
command that starts a Python there (the local interpreter, or a small container
of the VM image on the node's engine). Each node gets one reader for the whole
trial, started before the VMs: a loop that answers every newline with its
clock, so that a read costs a pipe's round trip, not a process start. A node
that cannot be read is said, and left out; the trial goes on.
"""

from __future__ import annotations

import itertools
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.clock_offset import measure_offset
from vm_node.rundir import NodeOffset

# The reader: one line in, the node's clock out. No imports but the standard library:
# it runs on any Python 3, in the VM image or not.
READ_LOOP = "import sys, time\nfor _ in sys.stdin:\n    print(repr(time.time()), flush=True)"
IMAGE_PYTHON = "/opt/clocklab/bin/python"  # the VM image's interpreter (Dockerfile)
FIRST_READ_S = 60.0  # a container's start on a busy engine
READ_S = 5.0


@dataclass(frozen=True, slots=True)
class ClockNode:
    """A node whose clock the orchestrator reads: `python` starts a Python there."""

    name: str
    vms: tuple[int, ...]
    python: tuple[str, ...]
    env: Mapping[str, str] | None = None


def container_python(
    image: str, labels: Mapping[str, str], context: str | None = None
) -> tuple[str, ...]:
    """A Python in a container of `image` on the engine of `context` (else the one the
    environment names): no network, locked down as the VMs are (the image's own user, a
    read-only root, no capabilities), labelled as the trial's, removed as its reader ends."""
    engine = ("docker",) if context is None else ("docker", "--context", context)
    marks = itertools.chain.from_iterable(("--label", f"{k}={v}") for k, v in labels.items())
    locked = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")
    return (*engine, "run", "-i", "--rm", "--network", "none", *locked, *marks,
            "--entrypoint", IMAGE_PYTHON, image)  # fmt: skip


class NodeClockError(Exception):
    """A node's clock could not be read."""


class TimeReader:
    """The reader loop on one node, answering each read with the node's clock."""

    def __init__(self, node: ClockNode) -> None:
        self.node = node
        self._process = subprocess.Popen(
            [*node.python, "-u", "-c", READ_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=node.env,
            start_new_session=True,  # a Ctrl-C meant for clocklab ends it through close()
        )
        self._timeout = FIRST_READ_S

    def read(self) -> float:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            raise NodeClockError(self._ended()) from None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(self._timeout):
                raise NodeClockError(f"no answer within {self._timeout:g} s")
        line = process.stdout.readline()
        if not line:
            raise NodeClockError(self._ended())
        self._timeout = READ_S
        try:
            return float(line)
        except ValueError:
            raise NodeClockError(f"answered {line[:80]!r}, not a time") from None

    def _ended(self) -> str:
        self.close()
        assert self._process.stderr is not None
        said = self._process.stderr.read().decode(errors="replace").strip().splitlines()
        return f"the reader exited with code {self._process.returncode}" + (
            f": {said[-1]}" if said else ""
        )

    def close(self) -> None:
        """End the loop (its container goes with it) and wait for it."""
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            try:
                process.stdin.close()
                process.wait(READ_S * 2)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()


class NodeClocks:
    """Readers on every node of a trial, and the offsets they measured."""

    def __init__(
        self,
        nodes: Sequence[ClockNode],
        clock: Callable[[], float] = time.time,
        reader: Callable[[ClockNode], TimeReader] = TimeReader,
    ) -> None:
        """Starts each node's reader (a container takes a moment: do it before the VMs)."""
        self.clock = clock
        self.readers: list[TimeReader] = []
        self.offsets: list[NodeOffset] = []
        self.errors: dict[str, str] = {}  # node -> why its clock could not be read
        for node in nodes:
            try:
                self.readers.append(reader(node))
            except OSError as e:  # no docker CLI, say
                self.errors[node.name] = f"start: {e}"

    def measure(self, phase: str) -> None:
        """Each node's offset now; a node that fails is named in `errors` and read no more."""
        for reader in self.readers:
            node = reader.node
            if node.name in self.errors:
                continue
            try:
                reading = measure_offset(reader.read, self.clock)
            except (NodeClockError, ValueError, OSError) as e:
                self.errors[node.name] = f"{phase}: {e}"
                reader.close()
                continue
            self.offsets.append(
                NodeOffset(
                    node=node.name,
                    phase=phase,
                    offset=reading.offset,
                    uncertainty=reading.uncertainty,
                    vms=node.vms,
                    at=reading.at,
                )
            )

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
