"""The swarm backend: one `docker stack deploy` per trial, VMs spread over the swarm's nodes.

The stack is the docker backend's rendering plus the swarm-only keys
(orchestrator.swarm_stack). The logs come from the service logs
(orchestrator.service_logs), exit codes from the tasks; teardown stops what
still runs while its logs can still be read, removes the stack, and waits
until its services, containers and network are gone.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.cleanup import docker_client, remove_labelled
from orchestrator.cluster.host_faults import HOST_FAULTS, simulated_hosts
from orchestrator.errors import BackendUnavailable, ClocklabError, ConfigError, TrialError
from orchestrator.plan import TrialPlan
from orchestrator.rundir import RunDir
from orchestrator.service_logs import LogWriter, ServiceLogStream
from orchestrator.stack import LABEL_VM, render_stack, write_stack
from orchestrator.stack_cli import StackCli
from orchestrator.swarm_stack import swarm_document

LABEL_STACK = "com.docker.stack.namespace"
START_TIMEOUT = 60.0  # seconds from deploy until every task runs (or has ended)
STOP_TIMEOUT = 20.0  # seconds for tasks to stop and their lines to come (~3 s, grace 5 s)
QUIET = 1.0  # seconds without a line after which a failed task has said everything
LATE = 10.0  # ... and a task that exited 0, whose `stop` line is on its way
REMOVE_TIMEOUT = 60.0  # seconds for the stack's services, containers and network to go
POLL_INTERVAL = 0.1
NOWHERE = "node.id == clocklab-stopped"  # a placement constraint no node satisfies
NEVER_RAN = -1  # the exit code reported for a task that had no container
NOT_YET = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)
RUNS = frozenset({*NOT_YET, "running"})
SHIP_HINT = (
    "ship it from this host with `docker save {image} | ssh NODE docker load` for each node "
    "(or push it to a registry and `docker pull` it on each node), then run the trial again"
)


class ImageMissing(ClocklabError):
    """Nodes lack the VM image: the message says which, and how to ship it."""

    def __init__(self, image: str, image_id: str, nodes: list[str]) -> None:
        super().__init__(
            f"the VM image {image} ({image_id.removeprefix('sha256:')[:12]}) is not on "
            f"node {', '.join(nodes)}; an image of that name built elsewhere is a different "
            f"image. {SHIP_HINT.format(image=image)}"
        )
        self.nodes = nodes


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    hostname: str

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Node:
        return cls(attrs["ID"], attrs["Description"]["Hostname"])


def usable_nodes(client: Any) -> list[Node]:
    """The swarm's ready, active nodes, by hostname; BackendUnavailable where this is no manager."""
    swarm = client.info().get("Swarm") or {}
    state = swarm.get("LocalNodeState") or "inactive"
    if state != "active":
        why = f": {swarm['Error']}" if swarm.get("Error") else ""
        raise BackendUnavailable(
            f"this Docker engine is not in a swarm (state {state}{why}). Run `docker swarm init` "
            "to make it a one-node swarm (`docker swarm leave --force` undoes it), or join it to "
            "a swarm with the `docker swarm join ...` command a manager prints"
        )
    if not swarm.get("ControlAvailable"):
        raise BackendUnavailable(
            "this Docker engine is a swarm worker: run clocklab on a manager "
            "(`docker node ls` works there and lists the managers)"
        )
    nodes = [
        Node.from_attrs(n.attrs)
        for n in client.nodes.list()
        if n.attrs["Status"]["State"] == "ready" and n.attrs["Spec"]["Availability"] == "active"
    ]
    if not nodes:
        raise BackendUnavailable("the swarm has no ready, active node (see `docker node ls`)")
    return sorted(nodes, key=lambda n: (n.hostname, n.id))


def exit_code(task: dict[str, Any] | None) -> int | None:
    """A task's exit code, None while it has yet to end; NEVER_RAN without a container."""
    if task is None or task["Status"]["State"] in RUNS:
        return None
    container = task["Status"].get("ContainerStatus") or {}
    if not container.get("ContainerID"):
        return NEVER_RAN
    return int(container.get("ExitCode", NEVER_RAN))


class SwarmBackend:
    """VMs as the services of one stack. No VM faults yet (kill, pause and partition are local
    to a node's engine, and a new task would start a new log directory); on a simulated
    cluster (orchestrator.cluster), host_partition cuts a whole host off."""

    name = "swarm"
    supported_faults: frozenset[str] = frozenset()

    def __init__(
        self,
        client: Any = None,
        cli: StackCli | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client or docker_client()
        self.cli = cli or StackCli()
        self.cli_version = self.cli.version()
        self.nodes = usable_nodes(self.client)
        self._hosts = simulated_hosts(self.client)  # host faults: on a simulated cluster only
        if self._hosts is not None:
            self.supported_faults = HOST_FAULTS
        self._clock = clock
        self._plan: TrialPlan | None = None
        self._run_dir: RunDir | None = None
        self._image_id: str | None = None
        self._services: dict[str, int] = {}  # service id -> VM
        self._task_ids: dict[int, str] = {}  # each VM's task
        self._tasks: dict[int, dict[str, Any]] = {}  # ... as last seen
        self._streams: dict[int, ServiceLogStream] = {}
        self._timings: dict[str, float] = {}
        self._leftovers: list[str] = []
        self._owner = False  # whether the stack is ours to remove

    @property
    def stack(self) -> str:
        assert self._plan is not None
        return self._plan.project

    # --- launch -------------------------------------------------------------

    def launch(self, plan: TrialPlan, run_dir: RunDir) -> None:
        from orchestrator.image import IMAGE, ensure_image

        self._image_id = ensure_image(self.client)
        self._plan, self._run_dir = plan, run_dir
        self.nodes = usable_nodes(self.client)
        self._check_hosts(plan)
        self._clear_leftover()
        self._owner = True
        document = render_stack(plan, IMAGE)
        nodes = [n.id for n in self.nodes]
        write_stack(swarm_document(document, plan, self._image_id, nodes), run_dir.compose_file)
        began = self._clock()
        self.cli.deploy(run_dir.compose_file, self.stack)
        self._services = {
            s.id: int(s.attrs["Spec"]["Labels"][LABEL_VM])
            for s in self.client.services.list(filters={"label": f"{LABEL_STACK}={self.stack}"})
        }
        self._follow_logs(run_dir)
        self._wait_until_started(IMAGE)
        self._timings["deploy_s"] = round(self._clock() - began, 3)

    def _check_hosts(self, plan: TrialPlan) -> None:
        """Before the deploy: every host fault names one of the swarm's nodes."""
        for i, fault in enumerate(plan.experiment.faults):
            if fault.host is not None and fault.host >= len(self.nodes):
                raise ConfigError(
                    f"faults[{i}].host",
                    f"must be a host in 0..{len(self.nodes) - 1} (the swarm has "
                    f"{len(self.nodes)} nodes), got {fault.host}",
                )

    def _clear_leftover(self) -> None:
        """Remove what a crashed trial of the same name left; refuse while its VMs run."""
        if not self._objects():
            return
        label = f"{LABEL_STACK}={self.stack}"
        if any(
            t["Status"]["State"] in RUNS for t in self.client.api.tasks(filters={"label": label})
        ):
            raise TrialError(
                f"a stack named {self.stack} runs already (the same trial, started elsewhere?): "
                f"wait for it to end, or remove it with `docker stack rm {self.stack}`"
            )
        self._remove()

    def _follow_logs(self, run_dir: RunDir) -> None:
        assert self._plan is not None
        run_dir.output.mkdir(exist_ok=True)
        for service, vm in self._services.items():
            writer = LogWriter(run_dir.logs, vm, self._plan.run)
            stream = ServiceLogStream(self.cli, service, writer, run_dir.output / f"vm{vm}.log")
            self._streams[vm] = stream
            stream.start()

    def _wait_until_started(self, image: str) -> None:
        """Until every task runs or has ended; a node without the image fails here."""
        assert self._image_id is not None
        deadline = self._clock() + START_TIMEOUT
        while waiting := [vm for vm, t in self._poll_tasks().items() if _state(t) in NOT_YET]:
            if self._clock() > deadline:
                stuck = "; ".join(f"vm{vm}: {self.diagnose(vm)}" for vm in waiting[:3])
                raise TrialError(f"not running {START_TIMEOUT:g} s after the deploy: {stuck}")
            time.sleep(POLL_INTERVAL)
        lacking = sorted(
            {
                self._hostname(t)
                for t in self._tasks.values()
                if "No such image" in t["Status"].get("Err", "")
            }
        )
        if lacking:
            raise ImageMissing(image, self._image_id, lacking)

    # --- while it runs ------------------------------------------------------

    def _poll_tasks(self) -> dict[int, dict[str, Any] | None]:
        """Each VM's task (None before it has one), as now; remembered for diagnose().

        A VM's task is the first its service had: restarts are off, and the
        task that _stop_running() makes replace it never runs.
        """
        assert self._plan is not None
        tasks = self.client.api.tasks(filters={"label": f"{LABEL_STACK}={self.stack}"})
        for task in tasks:
            vm = self._services.get(task["ServiceID"])
            if vm is not None and self._task_ids.setdefault(vm, task["ID"]) == task["ID"]:
                self._tasks[vm] = task
        return {vm: self._tasks.get(vm) for vm in range(self._plan.vms)}

    def exit_codes(self) -> dict[int, int | None]:
        """Each VM's exit code once its task has ended and its log lines are in, else None.

        The lines come through the service logs a little after the task ends:
        they are in once the `stop` line is, or after a while without a line.
        """
        if self._plan is None:
            return {}
        return {vm: self._exit_code(vm, task) for vm, task in self._poll_tasks().items()}

    def _exit_code(self, vm: int, task: dict[str, Any] | None) -> int | None:
        code = exit_code(task)
        stream = self._streams.get(vm)
        if code is None or stream is None or stream.writer.stopped:
            return code
        return code if stream.quiet_for() >= (LATE if code == 0 else QUIET) else None

    def diagnose(self, vm: int) -> str:
        task = self._tasks.get(vm)
        if task is None:
            return "no task"
        status = task["Status"]
        words = f"task {status['State']} on {self._hostname(task)}"
        if status.get("Err"):
            words += f": {status['Err']}"
        code = exit_code(task)
        if code not in (None, NEVER_RAN):
            words += f", exit code {code}"
        return words + self._stderr_tail(vm)

    def _stderr_tail(self, vm: int, lines: int = 5) -> str:
        assert self._run_dir is not None
        path = self._run_dir.output / f"vm{vm}.log"
        text = path.read_text(errors="replace").strip() if path.exists() else ""
        return f": {' / '.join(text.splitlines()[-lines:])}" if text else ""

    def _hostname(self, task: dict[str, Any]) -> str:
        node = task.get("NodeID", "")
        return next((n.hostname for n in self.nodes if n.id == node), node or "no node")

    # --- teardown -----------------------------------------------------------

    def teardown(self) -> None:
        if not self._owner:  # nothing deployed, or the stack is another trial's
            return
        began = self._clock()
        try:
            if self._streams:
                self._stop_running()
        finally:
            for stream in self._streams.values():
                stream.stop()  # all at once, then wait for each
            for stream in self._streams.values():
                stream.close()
            removing = self._clock()
            self._remove()
            self._timings["teardown_s"] = round(self._clock() - began, 3)
            self._timings["stack_rm_s"] = round(self._clock() - removing, 3)

    def _stop_running(self) -> None:
        """Stop the VMs that still run (SIGTERM: they log `stop`); wait until their lines are in.

        Scaling a service to 0 would remove its task's container, and the last
        lines with it, before they are read. A placement no node satisfies
        stops the task the same way but keeps its container until `stack rm`.
        """
        from docker.errors import APIError

        running = {vm for vm, code in self.exit_codes().items() if code is None}
        for service, vm in self._services.items():
            if vm in running:
                with contextlib.suppress(APIError):  # gone already: `stack rm` follows anyway
                    self.client.services.get(service).update(constraints=[NOWHERE])
        deadline = self._clock() + STOP_TIMEOUT
        while any(code is None for code in self.exit_codes().values()):
            if self._clock() > deadline:
                break
            time.sleep(POLL_INTERVAL)

    def _objects(self) -> list[str]:
        """What of this stack the manager still sees: services, local containers, network."""
        label = {"label": f"{LABEL_STACK}={self.stack}"}
        found = [f"service {s.name}" for s in self.client.services.list(filters=label)]
        # the low-level list: containers.list() inspects each and fails on one just removed
        containers = self.client.api.containers(all=True, filters=label)
        found += [f"container {c['Names'][0].lstrip('/')}" for c in containers]
        found += [f"network {n.name}" for n in self.client.networks.list(filters=label)]
        return found

    def _remove(self) -> None:
        """`docker stack rm`; wait until its objects are gone (the next trial reuses the name)."""
        assert self._plan is not None
        if self._objects():
            self.cli.rm(self.stack)
        deadline = self._clock() + REMOVE_TIMEOUT
        while self._objects():
            if self._clock() > deadline:
                remove_labelled(self.client, self._plan.run)  # what `stack rm` did not reach
                self._leftovers = self._objects()
                if self._leftovers:
                    print(
                        f"clocklab: {REMOVE_TIMEOUT:g} s after `docker stack rm`, stack "
                        f"{self.stack} still has {', '.join(self._leftovers)}; "
                        "`clocklab down` removes them",
                        file=sys.stderr,
                    )
                return
            time.sleep(POLL_INTERVAL)

    # --- VM faults: none yet (supported_faults holds host faults at most) ---------

    def kill(self, vm: int) -> None:
        raise NotImplementedError("the swarm backend cannot kill")

    def restart(self, vm: int) -> None:
        raise NotImplementedError("the swarm backend cannot restart")

    def pause(self, vm: int) -> None:
        raise NotImplementedError("the swarm backend cannot pause")

    def resume(self, vm: int) -> None:
        raise NotImplementedError("the swarm backend cannot pause")

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        raise NotImplementedError("the swarm backend cannot partition")

    def heal(self) -> None:
        raise NotImplementedError("the swarm backend cannot partition")

    # --- host faults, on a simulated cluster ----------------------------------

    def cut_off_host(self, host: int) -> None:
        assert self._hosts is not None
        self._hosts.cut_off(self.nodes[host].hostname)

    def reconnect_host(self, host: int) -> None:
        assert self._hosts is not None
        self._hosts.reconnect(self.nodes[host].hostname)

    # --- the manifest -------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        version = self.client.version()
        placement = {str(vm): self._hostname(t) for vm, t in sorted(self._tasks.items())}
        logs = {
            f"vm{vm}": {"repeated": w.repeated, "foreign": w.foreign, "gaps": w.gaps}
            for vm, w in ((vm, s.writer) for vm, s in sorted(self._streams.items()))
            if w.repeated or w.foreign or w.gaps
        }
        return {
            "backend": self.name,
            "image": self._image_id,
            "docker_cli": self.cli_version,
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "stack": self._plan.project if self._plan else None,
            "nodes": [n.hostname for n in self.nodes],
            "placement": placement,
            **self._timings,
            **({"log_anomalies": logs} if logs else {}),
            **({"leftovers": self._leftovers} if self._leftovers else {}),
        }


def _state(task: dict[str, Any] | None) -> str:
    return "new" if task is None else str(task["Status"]["State"])
