"""The run-directory contract: where a trial's files live and what its manifest says.

One home for it (docs/run-directory.md describes it for users): the VM writes its
log under `log_path`, the orchestrator writes the manifest, analysis and the
benchmarks read both. It lives in vm_node, the package every other one imports.

    <out>/<experiment>/trial-<n>/
        manifest.json        Manifest
        compose.yaml         the rendered stack (container backends)
        orchestrator.log     the faults carried out and any unexpected error, one JSON line each
        logs/vm<i>.jsonl     one JSON line per event; vm<i>.<k>.jsonl after k restarts
        output/vm<i>.log     what a VM printed besides its log
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import msgspec

# where callers look for them
from vm_node.errors import ManifestError as ManifestError
from vm_node.logname import LOG_NAME as LOG_NAME
from vm_node.logname import log_name as log_name
from vm_node.logname import parse_log_name as parse_log_name

MANIFEST = "manifest.json"
TRIAL_NAME = re.compile(r"trial-(\d+)")


class Outcome(StrEnum):
    """How a trial ended, as far as the orchestrator saw it."""

    RUNNING = "running"  # still running, or the orchestrator died without a word
    COMPLETED = "completed"
    FAILED = "failed"  # with Manifest.error
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM or SIGHUP: torn down, partial logs kept


class FaultRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """A fault the orchestrator carried out; start and end are wall-clock Unix seconds.

    Written without the fields a fault does not have, as the schedule gives it.
    """

    kind: str
    at: float = 0.0  # simulated seconds after the agreed start, as scheduled
    duration: float = 0.0
    targets: tuple[int, ...] = ()  # kill, pause
    groups: tuple[tuple[int, ...], ...] = ()  # partition
    condition: dict[str, Any] | None = None  # delay, loss, duplicate (LinkCondition.to_json)
    host: int | None = None  # host faults
    start: float | None = None
    end: float | None = None
    errors: tuple[str, ...] = ()


class NodeOffset(msgspec.Struct, frozen=True):
    """A node's wall clock against the orchestrator's, measured at one `phase` of a trial:
    the node's clock reads the orchestrator's plus `offset`, within ±`uncertainty` (half
    the shortest round trip of the reads). The VMs' configured `skew:` is not in it: the VM
    process adds that to its own timestamps."""

    node: str  # a hostname, or "local"
    phase: str  # "start" (every VM ready) or "end" (every VM done)
    offset: float  # seconds
    uncertainty: float  # seconds
    vms: tuple[int, ...] = ()  # the VMs that ran on the node
    at: float | None = None  # the orchestrator's clock at the read


class Manifest(msgspec.Struct, frozen=True):
    """What the orchestrator says a trial was: its plan, where it ran, how it ended.

    A run copied without its manifest still loads: `RunDir.read_manifest` infers
    the experiment and trial from the path and leaves the rest empty.
    """

    experiment: str
    trial: int
    run: str | None = None
    seed: int | None = None
    rates: tuple[float, ...] = ()
    vm_seeds: tuple[int, ...] = ()
    vms: int = 0
    duration: float | None = None
    time_scale: float = 1.0
    event_range: int | None = None
    config: dict[str, Any] = {}  # the experiment, as validated
    backend: str | None = None
    versions: dict[str, str] = {}
    outcome: Outcome | None = None  # None: no manifest was written
    error: str | None = None
    started_at: float | None = None
    launched_at: float | None = None
    first_tick_at: float | None = None
    ended_at: float | None = None
    environment: dict[str, Any] = {}  # image, placement, pids...
    vm_summaries: dict[str, Any] = {}  # each VM's stop line
    fidelity: dict[str, Any] = {}  # the worst VM's rate error
    faults: tuple[FaultRecord, ...] = ()
    node_offsets: tuple[NodeOffset, ...] = ()  # each node's clock, at the start and the end

    def with_(self, **changes: Any) -> Self:
        return msgspec.structs.replace(self, **changes)

    @property
    def completed(self) -> bool:
        return self.outcome is Outcome.COMPLETED


@dataclass(frozen=True, slots=True)
class RunDir:
    """A trial's directory and the names of everything in it."""

    path: Path

    @classmethod
    def of(cls, out: Path, experiment: str, trial: int) -> RunDir:
        """The directory of trial `trial` of `experiment` under `out`, as it is now."""
        return cls(out / experiment / f"trial-{trial}")

    def empty(self) -> None:
        """Remove whatever the directory holds, and make its empty `logs/`: running a trial
        again replaces it."""
        if self.path.exists():
            shutil.rmtree(self.path)
        self.logs.mkdir(parents=True)
        os.chmod(self.logs, 0o777)  # containers run as another user and write here

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log_path(self, vm: int, incarnation: int = 0) -> Path:
        return self.logs / log_name(vm, incarnation)

    def log_files(self) -> list[tuple[int, int, Path]]:
        """(vm, incarnation, path) of every VM log present, in that order."""
        found = []
        for path in self.logs.glob("*.jsonl"):
            if (key := parse_log_name(path.name)) is not None:
                found.append((*key, path))
        return sorted(found)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def stack_file(self) -> Path:
        return self.path / "compose.yaml"

    @property
    def orchestrator_log(self) -> Path:
        """The faults carried out, log files taken from a node's volume (Swarm), and the
        traceback of an unexpected error, as JSON lines (not *.jsonl: not a VM's log)."""
        return self.path / "orchestrator.log"

    @property
    def output(self) -> Path:
        """What VMs printed besides their logs (stderr), one file per VM."""
        return self.path / "output"

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace manifest.json atomically: a reader never sees half a file."""
        tmp = self.manifest_path.with_suffix(".json.tmp")
        text = msgspec.json.format(msgspec.json.encode(manifest, enc_hook=str), indent=2)
        tmp.write_bytes(text + b"\n")
        tmp.replace(self.manifest_path)

    def read_manifest(self) -> Manifest:
        """The manifest, or one inferred from the path where there is none."""
        path = self.manifest_path
        if not path.exists():
            return self._inferred_manifest()
        try:
            return msgspec.json.decode(path.read_bytes(), type=Manifest)
        except msgspec.ValidationError as e:
            raise ManifestError(path, f"bad manifest field ({e})") from e
        except (OSError, msgspec.DecodeError) as e:
            raise ManifestError(path, f"cannot read the manifest ({e})") from e

    def _inferred_manifest(self) -> Manifest:
        here = self.path.resolve()
        match = TRIAL_NAME.fullmatch(here.name)
        if match:
            return Manifest(experiment=here.parent.name, trial=int(match.group(1)))
        return Manifest(experiment=here.name, trial=1)
