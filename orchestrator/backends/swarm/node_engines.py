"""The engines of a swarm's nodes, each reached by its Docker context.

A node's context is named `<manager context>-<hostname>`: `clocklab cluster up`
makes them for its hosts; for real hosts, `docker context create <manager
context>-<hostname> --docker host=ssh://...` does. Through them clocklab kills
and pauses single VMs and crashes real hosts (node_faults.py), and reads each
node's log volume (node_logs.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

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
