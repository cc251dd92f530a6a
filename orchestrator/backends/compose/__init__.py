"""The docker backend: one Compose project per trial, named by its run id.

The trial's lab network gets a subnet chosen here, so that every VM's address
is in the compose file and each VM is told its peers' addresses: asking the
engine's name server instead, every VM would ask about every peer while that
engine is busy starting them. Faults through the engine: kill/start,
pause/unpause, and partitions by iptables beside the VMs (netcut.py): connections
across the cut hang, as on a real network, and those within a side never notice.
"""

from __future__ import annotations

import ipaddress
import random
import time
from pathlib import Path
from typing import Any

from orchestrator import neighbours, subnets
from orchestrator.auth import TrialKey
from orchestrator.backends.compose.docker_compose import Compose
from orchestrator.backends.compose.render import LabAddresses, render_stack, write_stack
from orchestrator.backends.netcut import NetworkCutter, Target, partition_drops
from orchestrator.engine import LABEL_RUN, LABEL_VM, Engine, remove_labelled
from orchestrator.errors import CommandError, TrialError
from orchestrator.events import Level, Notice, Reporter, ignore
from orchestrator.exits import ContainerExits
from orchestrator.plan import TrialPlan
from orchestrator.poll import poll
from vm_node.rundir import RunDir

RUNNING = ("created", "running", "restarting", "paused")  # container states with no exit yet
VM_UID = 10001  # compose/stack.yaml's `user`: the key file is handed to it
# Trials' lab networks take a /24 of this (the simulated cluster's is 172.31.0.0/16).
LAB_POOL = ipaddress.IPv4Network("172.30.0.0/16")
SUBNET_ATTEMPTS = 3  # another command may take the same free subnet at the same moment
DOWN_RETRY_S = 10.0  # seconds to repeat `down` while the lab network still has endpoints


class ComposeBackend:
    """It carries out its faults itself, through the engine."""

    name = "docker"

    def __init__(
        self,
        plan: TrialPlan,
        run_dir: RunDir,
        engine: Engine,
        image: str,
        compose: Compose,
        report: Reporter = ignore,
    ) -> None:
        """`image` is the VM image's id: another checkout may rebuild the tag mid-trial."""
        self.plan = plan
        self.run_dir = run_dir
        self.fault_parts: tuple[object, ...] = (self,)
        self.engine = engine
        self.report = report
        self.client = engine.client
        self.image = image
        self.compose = compose
        self._project_label = f"com.docker.compose.project={plan.project}"
        labels = engine.labels(plan.run, plan.experiment.name, plan.trial)
        self.cutter = NetworkCutter(image, labels)
        # the VMs a partition of the schedule cuts: each gets its helper at launch
        self._cuttable = sorted(
            {vm for f in plan.experiment.faults if f.groups for vm in partition_drops(f.groups)}
        )
        self._key: TrialKey | None = None
        self._exits: ContainerExits | None = None
        self._addresses: LabAddresses | None = None
        self._launched = False

    def launch(self) -> None:
        plan, run_dir = self.plan, self.run_dir
        self._launched = True
        labels = self.engine.labels(plan.run, plan.experiment.name, plan.trial)
        self._key = TrialKey.create(readable_by=VM_UID) if plan.experiment.auth else None
        key_file = self._key.path if self._key else None
        local = self.engine.endpoint.host.startswith("unix://")  # the engine's kernel is ours
        if local and (problem := neighbours.shortfall(plan.vms)):
            self.report(Notice(problem, Level.WARNING))
        self._exits = ContainerExits(self.client, self._project_label)  # before they start
        rng = random.Random()
        for attempt in range(1, SUBNET_ATTEMPTS + 1):
            self._addresses = LabAddresses(subnets.free(LAB_POOL, subnets.in_use(self.client), rng))
            document = render_stack(plan, self.image, labels, key_file, lab=self._addresses)
            write_stack(document, run_dir.stack_file)
            try:
                self.compose.up(run_dir.stack_file, plan.project)
                break
            except CommandError as e:  # nothing was made: the network comes first
                if "overlaps" not in e.stderr or attempt == SUBNET_ATTEMPTS:
                    raise
        containers = self._containers()
        self.cutter.prepare(self._target(vm, containers) for vm in self._cuttable)

    def _containers(self) -> dict[int, Any]:
        found = self.client.containers.list(all=True, filters={"label": self._project_label})
        return {int(c.labels[LABEL_VM]): c for c in found if LABEL_VM in c.labels}

    def exit_codes(self) -> dict[int, int | None]:
        reported = self._exits.codes() if self._exits is not None else None
        if reported is None:  # the event stream broke: ask container by container
            return self._listed_exit_codes()
        # An exit is confirmed by its container, which a restart may have started again
        # before its `start` event came: one request per exited VM, none per running one.
        return {vm: self._confirmed(vm, code) for vm, code in reported.items()}

    def _confirmed(self, vm: int, reported: int | None) -> int | None:
        if reported is None or self._exits is None:
            return reported
        from docker.errors import NotFound

        try:
            state = self.client.api.inspect_container(self._exits.container_id(vm))["State"]
        except NotFound:  # removed, by a crash or by a cleanup outside this trial
            return reported
        return None if state["Status"] in RUNNING else int(state["ExitCode"])

    def wait_for_change(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, less if a container started or died meanwhile."""
        if self._exits is None:
            time.sleep(timeout)
        elif self._exits.changed.wait(timeout):
            self._exits.changed.clear()

    def _listed_exit_codes(self) -> dict[int, int | None]:
        codes: dict[int, int | None] = {}
        for vm, container in self._containers().items():
            state = container.attrs["State"]
            codes[vm] = None if state["Status"] in RUNNING else state["ExitCode"]
        return codes

    def diagnose(self, vm: int) -> str:
        container = self._containers().get(vm)
        if container is None:
            return "no container"
        from docker.errors import APIError

        state = container.attrs["State"]
        words = f"container {state['Status']}, exit code {state['ExitCode']}"
        try:
            logs = container.logs(tail=5, stdout=False, stderr=True).decode(errors="replace")
        except APIError as e:  # being removed: by a crash, or by a cleanup outside this trial
            return f"{words} ({e.explanation})"
        return f"{words}: {logs.strip()}" if logs.strip() else words

    def _container(self, vm: int) -> Any:
        container = self._containers().get(vm)
        if container is None:
            raise TrialError(f"vm{vm} has no container")
        return container

    def kill(self, vm: int) -> None:
        self._container(vm).kill()

    def restart(self, vm: int) -> None:
        container = self._container(vm)
        container.start()
        if vm in self._cuttable:
            self.cutter.renew(Target(vm, self.client, container.id))

    def pause(self, vm: int) -> None:
        from docker.errors import APIError

        container = self._container(vm)
        try:
            container.pause()
        except APIError:  # the kernel's freezer can give up on a loaded machine: once more
            container.reload()
            if container.status != "paused":
                container.pause()

    def unpause(self, vm: int) -> None:
        self._container(vm).unpause()

    def _target(self, vm: int, containers: dict[int, Any]) -> Target:
        if vm not in containers:
            raise TrialError(f"vm{vm} has no container")
        return Target(vm, self.client, containers[vm].id)

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        assert self._addresses is not None  # launched
        containers = self._containers()
        self.cutter.cut(
            {
                self._target(vm, containers): [self._addresses.of(peer) for peer in peers]
                for vm, peers in partition_drops(groups).items()
            }
        )

    def heal(self) -> None:
        self.cutter.heal()

    def teardown(self) -> None:
        if not self._launched:
            return
        try:
            self.cutter.remove()
            self._save_output()
            if self.run_dir.stack_file.exists():
                self._down(self.run_dir.stack_file, self.plan.project)
        finally:
            if self._exits is not None:
                self._exits.close()
            if self._key is not None:  # first: the VMs read it at start, and nothing below
                self._key.remove()  # may leave it on disk by raising
            # whatever `down` did not reach
            remove_labelled(self.client, f"{LABEL_RUN}={self.plan.run}")

    def _down(self, file: Path, project: str) -> None:
        """`compose down`, again while the engine still detaches a removed container from the
        lab network ("has active endpoints"), as a loaded machine does after a large trial."""
        failures: list[CommandError] = []

        def down() -> bool:
            try:
                self.compose.down(file, project)
            except CommandError as e:
                if "active endpoints" not in e.stderr:
                    raise
                failures.append(e)
                return False
            return True

        if not poll(down, DOWN_RETRY_S, interval=0.5):
            raise failures[-1]

    def _save_output(self) -> None:
        """Keep each container's stderr beside the logs (stdout repeats the log lines)."""
        self.run_dir.output.mkdir(exist_ok=True)
        from docker.errors import APIError

        for vm, container in self._containers().items():
            try:
                text = container.logs(stdout=False, stderr=True)
            except APIError as e:  # removed meanwhile, by a crash or someone's cleanup
                text = f"clocklab: the container's output is gone ({e.explanation})\n".encode()
            (self.run_dir.output / f"vm{vm}.log").write_bytes(text)

    def describe(self) -> dict[str, Any]:
        version = self.client.version()
        return {
            "backend": self.name,
            "image": self.image,
            "compose": self.compose.version(),
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "endpoint": self.engine.endpoint.host,
            "session": self.engine.session,
            "project": self.plan.project,
            "auth": self._key is not None,
        }
