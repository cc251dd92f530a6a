"""What `clocklab cluster join` made, so that `cluster down` removes that and nothing else.

The record lives beside the Docker contexts it names, in the docker CLI's
config folder (`$DOCKER_CONFIG`, else ~/.docker): `clocklab/<cluster>.json`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from orchestrator.cluster.errors import ClusterError


class JoinedNode(msgspec.Struct, frozen=True):
    """One machine of a joined cluster."""

    hostname: str
    given: str  # as the user named it: ssh://... or a context
    context: str  # the context join made for it: <cluster>-<hostname>
    manager: bool = False
    joined_swarm: bool = False  # join added it to the swarm (it leaves at `down`)


class JoinRecord(msgspec.Struct, frozen=True):
    """A joined cluster: its name (the manager's context), its nodes, whether join made the
    swarm (it is dissolved at `down`) or found it (it is left as found)."""

    name: str
    swarm_made: bool
    nodes: tuple[JoinedNode, ...]

    @property
    def manager(self) -> JoinedNode:
        return next(node for node in self.nodes if node.manager)

    def node(self, hostname: str) -> JoinedNode | None:
        return next((node for node in self.nodes if node.hostname == hostname), None)


class Records:
    """The records of joined clusters, one file each, in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Records:
        config = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
        return cls(config / "clocklab")

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str) -> JoinRecord | None:
        path = self.path(name)
        try:
            return msgspec.json.decode(path.read_bytes(), type=JoinRecord)
        except FileNotFoundError:
            return None
        except msgspec.DecodeError as e:
            raise ClusterError(
                f"{path} is not a record of a joined cluster ({e}): remove it, and "
                "the contexts it named, by hand"
            ) from None

    def save(self, record: JoinRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(record.name)
        partial = path.with_suffix(".json.partial")
        partial.write_bytes(msgspec.json.format(msgspec.json.encode(record)))
        partial.replace(path)

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only if no other cluster's record is in it
