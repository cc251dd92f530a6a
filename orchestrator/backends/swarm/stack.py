"""One trial's stack: `docker stack deploy`, VMs spread over the swarm's nodes.

The stack is the docker backend's rendering plus the swarm-only keys
(render.py). The logs come from the service logs (service_logs.py), exit
codes from the tasks (tasks.py); removal stops what still runs while its
logs can still be read, removes the stack, and waits until its services,
containers and network are gone. A VM killed by a fault starts again as a
new task of its service (`start_again`).

A restarted VM's log directory was the old task's tmpfs (or its node's log
volume, node_logs.py), so the orchestrator hands the new incarnation its
number and the last clocks its earlier incarnations logged, read from the
lines collected in the run directory (CLOCKLAB_RESUME, vm_node.config): the
same lines the checker judges.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any, Literal

from orchestrator import neighbours
from orchestrator.auth import TrialKey
from orchestrator.backends import last_words
from orchestrator.backends.compose.render import render_stack, write_stack
from orchestrator.backends.swarm.docker_stack import StackCli
from orchestrator.backends.swarm.render import swarm_document
from orchestrator.backends.swarm.service_logs import LogWriter, ServiceLogStream
from orchestrator.backends.swarm.tasks import (
    NEVER_RAN,
    NOT_YET,
    RUNS,
    SHIP_HINT,
    exit_code,
    task_state,
    usable_nodes,
)
from orchestrator.engine import LABEL_RUN, LABEL_VM, Engine, remove_labelled
from orchestrator.errors import ImageMissing, TrialError
from orchestrator.events import Level, Notice, Reporter, ignore
from orchestrator.plan import TrialPlan
from orchestrator.poll import poll
from vm_node.resume import next_incarnation, read_resume
from vm_node.rundir import RunDir

LABEL_STACK = "com.docker.stack.namespace"
START_TIMEOUT = 60.0  # seconds from deploy until every task runs (or has ended)
STOP_TIMEOUT = 20.0  # seconds for tasks to stop (a grace of 5 s) and their lines to come
QUIET = 1.0  # seconds without a line after which a failed task has said everything
LATE = 10.0  # ... and a task that exited 0, whose `stop` line is on its way
REMOVE_TIMEOUT = 60.0  # seconds for the stack's services, containers and network to go
NOWHERE = "node.id == clocklab-stopped"  # a placement constraint no node satisfies
RESUME_ENV = "CLOCKLAB_RESUME"


@dataclasses.dataclass(frozen=True, slots=True)
class Swarm:
    """What every trial's stack on one swarm shares, resolved once per command."""

    engine: Engine
    image_id: str  # the VM image's id, which every node must hold
    image_name: str  # ... and its tag, for messages
    cli: StackCli
    cli_version: str
    report: Reporter = ignore
    clock: Callable[[], float] = time.monotonic
    # Whose VMs share this machine's neighbour (ARP) table: every VM on a simulated
    # cluster (its hosts are containers here), one node's share where this machine is
    # a node, none where the manager is another machine.
    neighbours: Literal["all", "node", "none"] = "none"


class Stack:
    """One trial's VMs as the services of one stack, on the swarm's nodes as they are when
    it is made."""

    def __init__(
        self, plan: TrialPlan, run_dir: RunDir, swarm: Swarm, log_volume: bool = False
    ) -> None:
        """With `log_volume`, each VM keeps its log on the trial's volume on its node too
        (node_logs.py collects them)."""
        self.swarm = swarm
        self.log_volume = log_volume
        self.client = swarm.engine.client
        self.nodes = usable_nodes(self.client)
        self.plan = dataclasses.replace(plan, hosts=len(self.nodes))
        self.run_dir = run_dir
        self.name = plan.project
        self.clock = swarm.clock
        self.timings: dict[str, float] = {}  # for the manifest
        self._services: dict[str, int] = {}  # service id -> VM
        self._task_ids: dict[int, str] = {}  # each VM's task
        self._retired: set[str] = set()  # tasks of VMs started again
        self._tasks: dict[int, dict[str, Any]] = {}  # ... as last seen
        self._streams: dict[int, ServiceLogStream] = {}
        self._leftovers: list[str] = []
        self._owner = False  # whether the stack is ours to remove

    # --- deploy -------------------------------------------------------------

    def deploy(self) -> None:
        plan, run_dir = self.plan, self.run_dir
        self._clear_leftover()
        self._owner = True
        self._warn_of_neighbours()
        labels = self.swarm.engine.labels(plan.run, plan.experiment.name, plan.trial)
        key = TrialKey.create() if plan.experiment.auth else None
        try:
            image_name = self.swarm.image_name
            document = render_stack(plan, image_name, labels, key.path if key else None)
            nodes = [n.id for n in self.nodes]
            volume = labels if self.log_volume else None
            write_stack(
                swarm_document(document, plan, self.swarm.image_id, nodes, volume),
                run_dir.stack_file,
            )
            began = self.clock()
            self.swarm.cli.deploy(run_dir.stack_file, self.name)
        finally:  # the swarm keeps its own copy of a secret
            if key is not None:
                key.remove()
        self._services = {
            s.id: int(s.attrs["Spec"]["Labels"][LABEL_VM])
            for s in self.client.services.list(filters={"label": f"{LABEL_STACK}={self.name}"})
        }
        self._follow_logs()
        self._wait_until_started()
        self.timings["deploy_s"] = round(self.clock() - began, 3)

    def _warn_of_neighbours(self) -> None:
        if self.swarm.neighbours == "none":
            return
        nodes = len(self.nodes) if self.swarm.neighbours == "node" else 1
        if problem := neighbours.shortfall(self.plan.vms, nodes=nodes):
            self.swarm.report(Notice(problem, Level.WARNING))

    def _clear_leftover(self) -> None:
        """Remove what a crashed trial of the same name left; refuse while its VMs run."""
        if not self._objects():
            return
        label = f"{LABEL_STACK}={self.name}"
        if any(
            t["Status"]["State"] in RUNS for t in self.client.api.tasks(filters={"label": label})
        ):
            raise TrialError(
                f"a stack named {self.name} runs already (the same trial, started elsewhere?): "
                f"wait for it to end, or remove it with `docker stack rm {self.name}`"
            )
        self._stack_rm()

    def _follow_logs(self) -> None:
        output = self.run_dir.output
        output.mkdir(exist_ok=True)
        for service, vm in self._services.items():
            writer = LogWriter(self.run_dir.logs, vm, self.plan.run)
            stream = ServiceLogStream(self.swarm.cli, service, writer, output / f"vm{vm}.log")
            self._streams[vm] = stream
            stream.start()

    def _waiting(self) -> list[int]:
        return [vm for vm, t in self._poll_tasks().items() if task_state(t) in NOT_YET]

    def _wait_until_started(self) -> None:
        """Until every task runs or has ended; a node without the image fails here."""
        if not poll(lambda: not self._waiting(), START_TIMEOUT, clock=self.clock):
            stuck = "; ".join(f"vm{vm}: {self.diagnose(vm)}" for vm in self._waiting()[:3])
            raise TrialError(f"not running {START_TIMEOUT:g} s after the deploy: {stuck}")
        lacking = sorted(
            {
                self._hostname(t)
                for t in self._tasks.values()
                if "No such image" in t["Status"].get("Err", "")
            }
        )
        if lacking:
            name = self.swarm.image_name
            raise ImageMissing(name, self.swarm.image_id, lacking, SHIP_HINT.format(image=name))

    # --- while it runs ------------------------------------------------------

    def _poll_tasks(self) -> dict[int, dict[str, Any] | None]:
        """Each VM's task (None before it has one), as now; remembered for diagnose().

        A VM's task is the first its service had (apart from retired ones):
        restarts are off, and the task that _stop_running() makes replace it
        never runs.
        """
        tasks = self.client.api.tasks(filters={"label": f"{LABEL_STACK}={self.name}"})
        for task in (t for t in tasks if t["ID"] not in self._retired):
            vm = self._services.get(task["ServiceID"])
            if vm is not None and self._task_ids.setdefault(vm, task["ID"]) == task["ID"]:
                self._tasks[vm] = task
        return {vm: self._tasks.get(vm) for vm in range(self.plan.vms)}

    def exit_codes(self) -> dict[int, int | None]:
        """Each VM's exit code once its task has ended and its log lines are in, else None.

        The lines come through the service logs a little after the task ends:
        they are in once the `stop` line is, or after a while without a line.
        So the manager is asked only while some VM could have an exit to report
        (`_may_have_ended`): not while every VM's lines still come.
        """
        if any(self._may_have_ended(vm) for vm in range(self.plan.vms)):
            self._poll_tasks()
        return {vm: self._exit_code(vm, self._tasks.get(vm)) for vm in range(self.plan.vms)}

    def _may_have_ended(self, vm: int) -> bool:
        """Whether VM `vm`'s task as last seen may be out of date in a way exit_codes()
        would show: it had yet to run, or it ran and its log may be complete (the `stop`
        line is in, or no line came for QUIET seconds). A VM whose lines still come
        would be reported running whatever its task says."""
        task = self._tasks.get(vm)
        if task_state(task) in NOT_YET:
            return True
        if exit_code(task) is not None:
            return False  # ended: a task that ended stays so (a restart makes a new one)
        stream = self._streams.get(vm)
        return stream is None or stream.writer.stopped or stream.quiet_for() >= QUIET

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
        said = last_words(self.run_dir.output, vm)
        return f"{words}: {said}" if said else words

    def _hostname(self, task: dict[str, Any]) -> str:
        node = task.get("NodeID", "")
        return next((n.hostname for n in self.nodes if n.id == node), node or "no node")

    def container_of(self, vm: int) -> tuple[str, str]:
        """(hostname, container id) of VM `vm`'s task, as the manager sees it now."""
        task = self._poll_tasks()[vm]
        status = (task or {}).get("Status", {})
        container = (status.get("ContainerStatus") or {}).get("ContainerID")
        if task is None or not container:
            raise TrialError(f"vm{vm} has no container to act on ({self.diagnose(vm)})")
        return self._hostname(task), str(container)

    def located(self) -> dict[int, tuple[str, str, str]]:
        """Each VM with a container: (hostname, container id, its address on the trial's
        network), as the manager sees them now."""
        network = f"{self.name}_lab"
        found = {}
        for vm, task in self._poll_tasks().items():
            if task is None:
                continue
            container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
            addresses = [
                address
                for attachment in task.get("NetworksAttachments") or []
                if attachment["Network"]["Spec"]["Name"] == network
                for address in attachment.get("Addresses") or []
            ]
            if container and addresses:
                found[vm] = (self._hostname(task), str(container), addresses[0].split("/")[0])
        return found

    def log_writer(self, vm: int) -> LogWriter | None:
        """Where VM `vm`'s streamed lines go; None for a VM the stack does not have."""
        stream = self._streams.get(vm)
        return stream.writer if stream is not None else None

    def vms_on(self, hostname: str) -> tuple[int, ...]:
        """The VMs whose tasks were last seen on node `hostname`."""
        return tuple(vm for vm, t in sorted(self._tasks.items()) if self._hostname(t) == hostname)

    def start_again(self, vm: int) -> None:
        """VM `vm` as its next incarnation, in a new task that resumes the last clocks logged."""
        logs = str(self.run_dir.logs)
        incarnation = next_incarnation(logs, vm)
        resume = read_resume(logs, vm, incarnation, self.plan.vms)
        if resume is None:
            raise TrialError(f"vm{vm} logged nothing before it went down: nothing to resume")
        task = self._task_ids.pop(vm, None)
        if task is not None:
            self._retired.add(task)
        self._tasks.pop(vm, None)
        service = next(s for s, v in self._services.items() if v == vm)
        self.swarm.cli.start_again(service, {RESUME_ENV: json.dumps(resume.to_json(incarnation))})

    # --- removal ------------------------------------------------------------

    @property
    def deployed(self) -> bool:
        """Whether this trial deployed its stack (and so may have left volumes)."""
        return self._owner

    def remove(self) -> None:
        """Stop what still runs while its lines can be read, then remove the stack; safe to
        call twice or after a failed deploy."""
        if not self._owner:  # nothing deployed, or the stack is another trial's
            return
        began = self.clock()
        try:
            if self._streams:
                self._stop_running()
        finally:
            for stream in self._streams.values():
                stream.stop()  # all at once, then wait for each
            for stream in self._streams.values():
                stream.close()
            removing = self.clock()
            self._stack_rm()
            self.timings["teardown_s"] = round(self.clock() - began, 3)
            self.timings["stack_rm_s"] = round(self.clock() - removing, 3)

    def _stop_running(self) -> None:
        """Stop the VMs that still run (SIGTERM: they log `stop`); wait until their lines are in.

        Scaling a service to 0 would remove its task's container, and the last
        lines with it, before they are read. A placement no node satisfies
        stops the task the same way but keeps its container until `stack rm`.
        Stop-first: the stack's start-first order would wait for a replacement
        that can run nowhere, and never stop the task.
        """
        from docker.errors import APIError
        from docker.types import UpdateConfig

        stop_first = UpdateConfig(order="stop-first")
        running = {vm for vm, code in self.exit_codes().items() if code is None}
        for service, vm in self._services.items():
            if vm in running:
                with contextlib.suppress(APIError):  # gone already: `stack rm` follows anyway
                    self.client.services.get(service).update(
                        constraints=[NOWHERE], update_config=stop_first
                    )
        poll(lambda: None not in self.exit_codes().values(), STOP_TIMEOUT, clock=self.clock)

    def _objects(self) -> list[str]:
        """What of this stack the manager still sees: services, local containers, network."""
        label = {"label": f"{LABEL_STACK}={self.name}"}
        found = [f"service {s.name}" for s in self.client.services.list(filters=label)]
        # the low-level list: containers.list() inspects each and fails on one just removed
        containers = self.client.api.containers(all=True, filters=label)
        found += [f"container {c['Names'][0].lstrip('/')}" for c in containers]
        found += [f"network {n.name}" for n in self.client.networks.list(filters=label)]
        return found

    def _stack_rm(self) -> None:
        """`docker stack rm`; wait until its objects are gone (the next trial reuses the name)."""
        if self._objects():
            self.swarm.cli.rm(self.name)
        if poll(lambda: not self._objects(), REMOVE_TIMEOUT, clock=self.clock):
            return
        remove_labelled(self.client, f"{LABEL_RUN}={self.plan.run}")  # what `stack rm` left
        self._leftovers = self._objects()
        if self._leftovers:
            self.swarm.report(
                Notice(
                    f"{REMOVE_TIMEOUT:g} s after `docker stack rm`, stack {self.name} still "
                    f"has {', '.join(self._leftovers)}; `clocklab down --run {self.plan.run}` "
                    "removes them",
                    Level.WARNING,
                )
            )

    # --- the manifest -------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        version = self.client.version()
        placement = {str(vm): self._hostname(t) for vm, t in sorted(self._tasks.items())}
        logs = {f"vm{vm}": a for vm, s in sorted(self._streams.items()) if (a := s.anomalies())}
        return {
            "image": self.swarm.image_id,
            "endpoint": self.swarm.engine.endpoint.host,
            "session": self.swarm.engine.session,
            "docker_cli": self.swarm.cli_version,
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "stack": self.name,
            "auth": self.plan.experiment.auth,
            "nodes": [n.hostname for n in self.nodes],
            "placement": placement,
            **self.timings,
            **({"log_anomalies": logs} if logs else {}),
            **({"leftovers": self._leftovers} if self._leftovers else {}),
        }
