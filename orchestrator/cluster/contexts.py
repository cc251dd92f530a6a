"""The Docker contexts of a cluster: `<name>` for the manager, `<name>-<hostname>` for each host.

They are the docker CLI's own (`docker context create`), so `docker --context
clocklab-cluster node ls` works as for a real cluster. Each context's
description says clocklab made it, for a simulated cluster (MARK) or a joined
one (JOIN_MARK); `down` removes only contexts named after the cluster that say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.layout import Layout
from orchestrator.errors import CommandError
from orchestrator.subprocesses import run_command

MARK = "clocklab simulated cluster"
JOIN_MARK = "clocklab joined cluster"
TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Context:
    name: str
    docker_host: str
    description: str
    # a context to copy the endpoint from (its TLS material too), instead of docker_host
    source: str = field(default="", compare=False)


def wanted(layout: Layout) -> list[Context]:
    """The contexts `layout` needs: the manager's first, then one per host."""
    manager = layout.manager
    found = [Context(layout.manager_context, manager.docker_host, f"{MARK} {layout.name}: manager")]
    for host in layout.all_hosts():
        found.append(
            Context(host.context, host.docker_host, f"{MARK} {layout.name}: {host.hostname}")
        )
    return found


class Contexts:
    """The one wrapper around `docker context`."""

    def __init__(self, docker: str = "docker") -> None:
        self._docker = docker

    def existing(self) -> dict[str, Context]:
        """Every context of the CLI, by name (the default one has no description)."""
        out = self._run(["context", "ls", "--format", "{{json .}}"])
        found: dict[str, Context] = {}
        for line in out.splitlines():
            entry = json.loads(line)
            name = str(entry["Name"])
            found[name] = Context(name, str(entry.get("DockerEndpoint", "")), entry["Description"])
        return found

    def ensure(self, contexts: list[Context]) -> list[str]:
        """Create the contexts missing or pointing elsewhere; which were made."""
        existing = self.existing()
        made: list[str] = []
        for context in contexts:
            if existing.get(context.name) == context:
                continue
            if context.name in existing:
                self._refuse_foreign(existing[context.name])
                self._run(["context", "rm", "--force", context.name])
            create = ["context", "create", context.name, "--description", context.description]
            endpoint = f"from={context.source}" if context.source else f"host={context.docker_host}"
            self._run([*create, "--docker", endpoint])
            made.append(context.name)
        return made

    def remove(self, cluster: str) -> list[str]:
        """Remove the contexts clocklab made for `cluster`; which were removed."""
        ours = [
            c.name
            for c in self.existing().values()
            if (c.name == cluster or c.name.startswith(f"{cluster}-")) and _is_ours(c, cluster)
        ]
        self.remove_names(ours)
        return ours

    def remove_names(self, names: list[str]) -> None:
        if names:
            self._run(["context", "rm", "--force", *names])

    def _refuse_foreign(self, context: Context) -> None:
        if not context.description.startswith((MARK, JOIN_MARK)):
            raise ClusterError(
                f"a Docker context named {context.name} exists and was not made by clocklab "
                f"({context.docker_host}); remove it (`docker context rm {context.name}`) "
                "or choose another cluster name"
            )

    def _run(self, args: list[str]) -> str:
        try:
            return run_command([self._docker, *args], TIMEOUT)
        except FileNotFoundError:
            raise ClusterError("the docker CLI is not installed: the contexts need it") from None
        except CommandError as e:
            raise ClusterError(str(e)) from None


def _is_ours(context: Context, cluster: str) -> bool:
    return context.description.startswith(f"{MARK} {cluster}:")
