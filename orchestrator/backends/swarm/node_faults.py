"""VM faults on Swarm (kill, pause), carried out through the engine of the node running the VM.

A node's engine is reached by its Docker context, named `<manager context>-<hostname>`:
`clocklab cluster up` makes them for its hosts; for real hosts, `docker context create
<manager context>-<hostname> --docker host=ssh://...` does. Where a context is missing,
the plain swarm backend runs the trial and offers no VM faults.

A killed VM comes back as a new task of its service. Its log directory was the old
task's tmpfs, gone with it, so the orchestrator hands the new incarnation its number
and the last clocks its earlier incarnations logged, read from the lines collected in
the run directory (CLOCKLAB_RESUME, vm_node.config): the same lines the checker judges.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from orchestrator.backends.swarm import SwarmBackend
from orchestrator.backends.swarm.tasks import Node
from orchestrator.engine import Engine, connect, resolve_endpoint
from orchestrator.errors import ConfigError, TrialError
from vm_node.resume import next_incarnation, read_resume

RESUME_ENV = "CLOCKLAB_RESUME"


class NodeEngines:
    """The engines of a swarm's nodes, each by its context `<manager context>-<hostname>`."""

    def __init__(
        self, manager_context: str, session: str, environ: Mapping[str, str] = os.environ
    ) -> None:
        self.manager_context = manager_context
        self._session = session
        self._environ = environ
        self._engines: dict[str, Engine] = {}

    def context(self, hostname: str) -> str:
        return f"{self.manager_context}-{hostname}"

    def missing(self, nodes: list[Node]) -> list[str]:
        """The contexts of `nodes` that do not exist."""
        lacking = []
        for node in nodes:
            try:
                resolve_endpoint(self.context(node.hostname), self._environ)
            except ConfigError:
                lacking.append(self.context(node.hostname))
        return lacking

    def client(self, hostname: str) -> Any:
        if hostname not in self._engines:
            endpoint = resolve_endpoint(self.context(hostname), self._environ)
            self._engines[hostname] = connect(endpoint, self._session)
        return self._engines[hostname].client


class SwarmNodeFaults(SwarmBackend):
    """The swarm backend, with kill (a new incarnation follows) and pause of single VMs."""

    def __init__(self, *args: Any, node_engines: NodeEngines, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_engines = node_engines

    def kill(self, vm: int) -> None:
        hostname, container = self._container(vm)
        self.node_engines.client(hostname).api.kill(container)

    def restart(self, vm: int) -> None:
        self.start_again(vm)

    def pause(self, vm: int) -> None:
        hostname, container = self._container(vm)
        self.node_engines.client(hostname).api.pause(container)

    def unpause(self, vm: int) -> None:
        hostname, container = self._container(vm)
        self.node_engines.client(hostname).api.unpause(container)

    def _container(self, vm: int) -> tuple[str, str]:
        """(hostname, container id) of VM `vm`'s task, as the manager sees it now."""
        task = self._poll_tasks()[vm]
        status = (task or {}).get("Status", {})
        container = (status.get("ContainerStatus") or {}).get("ContainerID")
        if task is None or not container:
            raise TrialError(f"vm{vm} has no container to act on ({self.diagnose(vm)})")
        return self._hostname(task), str(container)

    def start_again(self, vm: int) -> None:
        """VM `vm` as its next incarnation, in a new task that resumes the last clocks logged."""
        assert self._run_dir is not None and self._plan is not None
        logs = str(self._run_dir.logs)
        incarnation = next_incarnation(logs, vm)
        resume = read_resume(logs, vm, incarnation, self._plan.vms)
        if resume is None:
            raise TrialError(f"vm{vm} logged nothing before it went down: nothing to resume")
        task = self._task_ids.pop(vm, None)
        if task is not None:
            self._retired.add(task)
        self._tasks.pop(vm, None)
        service = next(s for s, v in self._services.items() if v == vm)
        self.cli.start_again(service, {RESUME_ENV: json.dumps(resume.to_json(incarnation))})
