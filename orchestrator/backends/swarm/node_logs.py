"""Each VM's log kept on a volume on its node too, and collected from there into `logs/`.

The service logs carry every line from whichever node (service_logs.py), but
the lines a node had yet to hand on die with it. Where clocklab reaches every
node's engine (NodeEngines), each VM also writes its log to the trial's volume
on its node (render.py), each line there before stdout. After the trial, and
when a crashed host comes back, each node's volume is read through that node's
engine, by a container of the VM image that is made and never started, and
each incarnation's file is kept in the longer of the two copies. The volumes
go at teardown, node by node.
"""

from __future__ import annotations

import contextlib
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from orchestrator.backends.swarm.node_engines import NodeEngines
from orchestrator.backends.swarm.render import LOG_VOLUME
from orchestrator.backends.swarm.service_logs import Adopted
from orchestrator.backends.swarm.stack import Stack
from orchestrator.backends.swarm.tasks import Node
from vm_node.rundir import parse_log_name

STAGING = ".node-logs"  # in the run directory: a node's files on their way into logs/


def volume_name(stack: str) -> str:
    """The log volume's name on each node, as `docker stack deploy` names it."""
    return f"{stack}_{LOG_VOLUME}"


def read_volume(client: Any, image: str, volume: str, labels: dict[str, str], into: Path) -> None:
    """The files of `volume` on the engine `client`, copied into the folder `into`; none
    where the node has no such volume (no VM of the trial ran there)."""
    from docker.errors import NotFound

    try:
        client.volumes.get(volume)
    except NotFound:  # mounting it would make an empty one, unlabelled
        return
    reader = client.api.create_container(
        image,
        labels=labels,
        host_config=client.api.create_host_config(binds={volume: {"bind": "/v", "mode": "ro"}}),
    )["Id"]
    try:
        chunks, _ = client.api.get_archive(reader, "/v/.")
        with tempfile.TemporaryFile(dir=into) as archive:
            for chunk in chunks:
                archive.write(chunk)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                for member in tar.getmembers():
                    name = Path(member.name).name
                    if member.isfile() and parse_log_name(name) is not None:
                        source = tar.extractfile(member)
                        assert source is not None  # a regular file
                        (into / name).write_bytes(source.read())
    finally:
        client.api.remove_container(reader, force=True)


class NodeLogs:
    """The log volumes of `stack` on its nodes, each reached through `engines`."""

    def __init__(self, stack: Stack, engines: NodeEngines) -> None:
        self.stack = stack
        self.engines = engines
        self.volume = volume_name(stack.name)
        self.read: dict[str, tuple[str, Adopted]] = {}  # file: (node, its copy), as last read
        self.from_volume: set[str] = set()  # files whose node's copy was kept
        self.problems: list[str] = []

    def collect(self, hostname: str) -> list[Adopted]:
        """Node `hostname`'s copy of each log file its VMs wrote, kept where it is longer.

        A node that cannot be read is named in `problems` (the manifest, a warning at
        teardown): the streamed lines stay, and a crashed host's VMs still start again.
        """
        from docker.errors import DockerException

        staging = self.stack.run_dir.path / STAGING / hostname
        staging.mkdir(parents=True, exist_ok=True)
        try:
            return self._merge(hostname, staging)
        except (DockerException, OSError, tarfile.TarError, ValueError) as e:
            self.problems.append(f"{hostname}: {type(e).__name__}: {e}")
            return []
        finally:
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()
            with contextlib.suppress(OSError):  # another node's folder is still there
                staging.parent.rmdir()

    def _merge(self, hostname: str, staging: Path) -> list[Adopted]:
        stack = self.stack
        plan = stack.plan
        labels = stack.swarm.engine.labels(plan.run, plan.experiment.name, plan.trial)
        client = self.engines.client(hostname)
        read_volume(client, stack.swarm.image_id, self.volume, labels, staging)
        adopted = []
        for path in sorted(staging.iterdir()):
            vm, incarnation = parse_log_name(path.name) or (-1, 0)  # read_volume took logs only
            writer = stack.log_writer(vm)
            if writer is None:  # not a VM of this trial: nothing to merge it with
                continue
            copy = writer.adopt(incarnation, path)
            self.read[copy.file] = (hostname, copy)
            if copy.kept:
                self.from_volume.add(copy.file)
                self._record(hostname, copy)
            adopted.append(copy)
        return adopted

    def collect_all(self) -> None:
        """Every node's volume, one node after the other (each merges into the same files)."""
        for node in self.stack.nodes:
            self.collect(node.hostname)

    def remove_volumes(self) -> None:
        """The trial's log volume on every node, all at once."""
        with ThreadPoolExecutor(max(1, len(self.stack.nodes))) as pool:
            for node, problem in zip(
                self.stack.nodes, pool.map(self._remove, self.stack.nodes), strict=True
            ):
                if problem:
                    self.problems.append(f"{node.hostname}: {problem}")

    def _remove(self, node: Node) -> str | None:
        """Why the volume stayed on `node`, or None."""
        from docker.errors import DockerException, NotFound

        try:
            self.engines.client(node.hostname).volumes.get(self.volume).remove(force=True)
        except NotFound:
            pass
        except DockerException as e:
            return f"volume {self.volume} not removed: {e}"
        return None

    def _record(self, hostname: str, copy: Adopted) -> None:
        """Say in orchestrator.log that a file came from the node's volume."""
        line = {
            "event": "log_from_volume",
            "node": hostname,
            "file": copy.file,
            "lines": copy.lines,
            "streamed": copy.streamed,
        }
        with self.stack.run_dir.orchestrator_log.open("ab") as out:
            out.write(orjson.dumps(line) + b"\n")

    def describe(self) -> dict[str, Any]:
        """For the manifest: each file as its node kept it, which came from there, and what
        went wrong."""
        on_nodes = {
            file: {"node": node, "lines": copy.lines, "streamed": copy.streamed}
            for file, (node, copy) in sorted(self.read.items())
        }
        facts: dict[str, Any] = {
            "log_volume": self.volume,
            "logs_on_nodes": on_nodes,
            "logs_from_volume": sorted(self.from_volume),
        }
        if self.problems:
            facts["log_volume_problems"] = self.problems
        return facts
