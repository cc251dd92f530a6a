"""VM faults on Swarm (kill, pause), carried out through the engine of the node running the VM.

A node's engine is reached by its Docker context, named `<manager context>-<hostname>`:
`clocklab cluster up` makes them for its hosts; for real hosts, `docker context create
<manager context>-<hostname> --docker host=ssh://...` does. A killed VM comes back as a
new task of its service, its next incarnation (Stack.start_again).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from orchestrator.backends.swarm.stack import Stack
from orchestrator.backends.swarm.tasks import Node
from orchestrator.engine import Engine, connect, resolve_endpoint
from orchestrator.errors import ConfigError


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


class NodeFaults:
    """Kill (a new incarnation follows) and pause of single VMs of `stack`."""

    def __init__(self, stack: Stack, engines: NodeEngines) -> None:
        self.stack = stack
        self.engines = engines

    def kill(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.kill(container)

    def restart(self, vm: int) -> None:
        self.stack.start_again(vm)

    def pause(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.pause(container)

    def unpause(self, vm: int) -> None:
        hostname, container = self.stack.container_of(vm)
        self.engines.client(hostname).api.unpause(container)
