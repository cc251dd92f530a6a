"""The swarm backend: one `docker stack deploy` per trial, VMs spread over the swarm's nodes.

The stack is the docker backend's rendering plus the swarm-only keys
(render.py). The logs come from the service logs (service_logs.py), exit
codes from the tasks (tasks.py); teardown stops what still runs while its
logs can still be read, removes the stack, and waits until its services,
containers and network are gone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

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
from vm_node.rundir import RunDir

LABEL_STACK = "com.docker.stack.namespace"
START_TIMEOUT = 60.0  # seconds from deploy until every task runs (or has ended)
STOP_TIMEOUT = 20.0  # seconds for tasks to stop (a grace of 5 s) and their lines to come
QUIET = 1.0  # seconds without a line after which a failed task has said everything
LATE = 10.0  # ... and a task that exited 0, whose `stop` line is on its way
REMOVE_TIMEOUT = 60.0  # seconds for the stack's services, containers and network to go
NOWHERE = "node.id == clocklab-stopped"  # a placement constraint no node satisfies


class SwarmBackend:
    """VMs as the services of one stack. It offers no faults: kill and pause need the
    engine of each node (node_faults.py), partitions the hosts (orchestrator.cluster)."""

    name = "swarm"

    def __init__(
        self,
        engine: Engine,
        image: str,
        image_name: str,
        cli: StackCli | None = None,
        report: Reporter = ignore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`image` is the VM image's id, `image_name` its tag (for messages)."""
        self.engine = engine
        self.client = engine.client
        self._image_id = image
        self._image_name = image_name
        self.report = report
        self.cli = cli or StackCli(engine.endpoint)
        self.cli_version = self.cli.version()
        self.nodes = usable_nodes(self.client)
        self._clock = clock
        self._plan: TrialPlan | None = None
        self._run_dir: RunDir | None = None
        self._services: dict[str, int] = {}  # service id -> VM
        self._task_ids: dict[int, str] = {}  # each VM's task
        self._retired: set[str] = set()  # tasks of VMs started again (node_faults.py)
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
        self.nodes = usable_nodes(self.client)
        self._plan, self._run_dir = dataclasses.replace(plan, hosts=len(self.nodes)), run_dir
        plan = self._plan
        self._clear_leftover()
        self._owner = True
        labels = self.engine.labels(plan.run, plan.experiment.name, plan.trial)
        key = TrialKey.create() if plan.experiment.auth else None
        try:
            document = render_stack(plan, self._image_name, labels, key.path if key else None)
            nodes = [n.id for n in self.nodes]
            write_stack(swarm_document(document, plan, self._image_id, nodes), run_dir.stack_file)
            began = self._clock()
            self.cli.deploy(run_dir.stack_file, self.stack)
        finally:  # the swarm keeps its own copy of a secret
            if key is not None:
                key.remove()
        self._services = {
            s.id: int(s.attrs["Spec"]["Labels"][LABEL_VM])
            for s in self.client.services.list(filters={"label": f"{LABEL_STACK}={self.stack}"})
        }
        self._follow_logs(run_dir)
        self._wait_until_started()
        self._timings["deploy_s"] = round(self._clock() - began, 3)

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

    def _waiting(self) -> list[int]:
        return [vm for vm, t in self._poll_tasks().items() if task_state(t) in NOT_YET]

    def _wait_until_started(self) -> None:
        """Until every task runs or has ended; a node without the image fails here."""
        if not poll(lambda: not self._waiting(), START_TIMEOUT, clock=self._clock):
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
            hint = SHIP_HINT.format(image=self._image_name)
            raise ImageMissing(self._image_name, self._image_id, lacking, hint)

    # --- while it runs ------------------------------------------------------

    def _poll_tasks(self) -> dict[int, dict[str, Any] | None]:
        """Each VM's task (None before it has one), as now; remembered for diagnose().

        A VM's task is the first its service had (apart from retired ones):
        restarts are off, and the task that _stop_running() makes replace it
        never runs.
        """
        assert self._plan is not None
        tasks = self.client.api.tasks(filters={"label": f"{LABEL_STACK}={self.stack}"})
        for task in (t for t in tasks if t["ID"] not in self._retired):
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
        assert self._run_dir is not None
        said = last_words(self._run_dir.output, vm)
        return f"{words}: {said}" if said else words

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
        poll(lambda: None not in self.exit_codes().values(), STOP_TIMEOUT, clock=self._clock)

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
        if poll(lambda: not self._objects(), REMOVE_TIMEOUT, clock=self._clock):
            return
        remove_labelled(self.client, f"{LABEL_RUN}={self._plan.run}")  # what `stack rm` left
        self._leftovers = self._objects()
        if self._leftovers:
            self.report(
                Notice(
                    f"{REMOVE_TIMEOUT:g} s after `docker stack rm`, stack {self.stack} still "
                    f"has {', '.join(self._leftovers)}; `clocklab down --run {self._plan.run}` "
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
            "backend": self.name,
            "image": self._image_id,
            "endpoint": self.engine.endpoint.host,
            "session": self.engine.session,
            "docker_cli": self.cli_version,
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "stack": self._plan.project if self._plan else None,
            "auth": bool(self._plan and self._plan.experiment.auth),
            "nodes": [n.hostname for n in self.nodes],
            "placement": placement,
            **self._timings,
            **({"log_anomalies": logs} if logs else {}),
            **({"leftovers": self._leftovers} if self._leftovers else {}),
        }
