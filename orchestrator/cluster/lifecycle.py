"""Bring a cluster up (idempotent; what one call made goes again if it is cut short) and down."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import Any

from orchestrator.cluster import formation, hosts
from orchestrator.cluster.contexts import Contexts, wanted
from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.host_image import ensure_host_image
from orchestrator.cluster.layout import LABEL_HOST, MAX_HOSTS, Host, Layout
from orchestrator.poll import poll
from orchestrator.shield import signals_deferred

CGROUP_TIMEOUT = 10.0  # seconds for a removed host's cgroups to empty: far more than it takes

Progress = Callable[[str], None]


class Cluster:
    """A cluster as `layout` describes it, on the engine `outer` (this machine's)."""

    def __init__(
        self,
        layout: Layout,
        outer: Any,
        say: Progress,
        contexts: Contexts | None = None,
    ) -> None:
        self.layout = layout
        self.outer = outer
        self.contexts = contexts or Contexts()
        self._say = say
        self._made_hosts: list[Host] = []
        self._made_network = False
        self._made_contexts: list[str] = []

    # --- up -------------------------------------------------------------------

    def up(self, vm_image: str) -> None:
        """Hosts running, swarm formed, `vm_image` (a name) on every host, contexts made; only
        the hosts where the layout is bare."""
        refuse_inner_engine(self.outer)
        self._refuse_other_size()
        try:
            self._up(vm_image)
        except BaseException:
            with signals_deferred():
                self._undo()
            raise

    def _up(self, vm_image: str) -> None:
        layout = self.layout
        host_image = ensure_host_image(self.outer, layout.host_image, self._say)
        self._made_network = hosts.ensure_network(self.outer, layout)
        for host in layout.all_hosts():
            if hosts.ensure_host(self.outer, layout, host, host_image):
                self._made_hosts.append(host)
                self._say(f"{host.hostname}: container {host.container} started")
        engines = {}
        for host in layout.all_hosts():
            engines[host.index] = hosts.wait_for_engine(self.outer, host)
            self._say(f"{host.hostname}: its engine answers")
        if layout.bare:  # `clocklab cluster join` forms the rest, as on real machines
            for engine in engines.values():
                engine.close()
            return
        pairs = [(host.hostname, engines[host.index]) for host in layout.all_hosts()]
        formation.ship_image(self.outer, vm_image, pairs, self._say)
        if layout.manager in self._made_hosts:
            formation.probe_containers(layout.manager, engines[0], vm_image)
            self._say("host0: runs containers")
        address = {h.index: hosts.host_address(self.outer, layout, h) for h in layout.all_hosts()}
        workers = [(engines[h.index], address[h.index]) for h in layout.all_hosts()[1:]]
        for line in formation.form_swarm(engines[0], address[0], workers):
            self._say(line)
        formation.wait_until_ready(engines[0], [h.hostname for h in layout.all_hosts()])
        self._say(f"swarm: {layout.hosts} nodes ready")
        self._made_contexts = self.contexts.ensure(wanted(layout))
        if self._made_contexts:
            self._say(f"contexts: {', '.join(self._made_contexts)}")
        for engine in engines.values():
            engine.close()

    def _refuse_other_size(self) -> None:
        existing = hosts.cluster_containers(self.outer, self.layout.name)
        names = {c.labels.get(LABEL_HOST) for c in existing}
        extra = sorted(n for n in names - {h.hostname for h in self.layout.all_hosts()} if n)
        if extra:
            raise ClusterError(
                f"{self.layout.name} has {len(existing)} hosts, not {self.layout.hosts} "
                f"({', '.join(sorted(map(str, names)))}): `clocklab cluster down` first, "
                "or ask for "
                f"--hosts {len(existing)}"
            )

    def _undo(self) -> None:
        """Remove what this call made: its hosts, its contexts, the network if it made it."""
        if not (self._made_hosts or self._made_network or self._made_contexts):
            return
        self._say("removing what this `cluster up` made")
        if self._made_contexts:
            with contextlib.suppress(ClusterError):
                self.contexts.remove_names(self._made_contexts)
        for host in self._made_hosts:
            self._remove_host(host)
        if self._made_network:
            hosts.remove_everything(self.outer, self.layout.name)

    # --- down -----------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove every container, volume, network, cgroup folder, socket and context."""
        with signals_deferred():
            removed = hosts.remove_everything(self.outer, self.layout.name)
            # a host of another cluster keeps its cgroups and socket: they share the names
            others = {c.name for c in hosts.host_containers(self.outer)}
            for index in range(MAX_HOSTS):
                if self.layout.host(index).container not in others:
                    removed += self._cgroups_and_sockets(self.layout.host(index))
            with contextlib.suppress(OSError):
                self.layout.sockets.rmdir()  # only if nothing else is in it
            removed += [f"context {name}" for name in self.contexts.remove(self.layout.name)]
        return removed

    def _remove_host(self, host: Host) -> None:
        hosts.discard_host(self.outer, host)
        self._cgroups_and_sockets(host)

    def _cgroups_and_sockets(self, host: Host) -> list[str]:
        removed = _remove_cgroups(host)
        try:
            shutil.rmtree(host.socket_dir)
        except FileNotFoundError:
            pass
        else:
            removed.append(f"socket folder {host.socket_dir}")
        return removed


def _remove_cgroups(host: Host) -> list[str]:
    """Remove `host`'s cgroup folders, retrying while the last processes leave them."""
    if not hosts.cgroup_folders(host):
        return []
    errors: list[OSError] = []
    removed: list[str] = []

    def attempt() -> bool:
        try:
            removed.extend(hosts.remove_cgroup_folders(host))
        except OSError as e:
            errors.append(e)
            return False
        return True

    if not poll(attempt, CGROUP_TIMEOUT, interval=0.2):
        raise ClusterError(
            f"could not remove the cgroup folders of {host.hostname} "
            f"({', '.join(map(str, hosts.cgroup_folders(host)))}): {errors[-1]}"
        )
    return [f"cgroup folders {host.cgroup_parent} ({len(removed)} controllers)"]


def refuse_inner_engine(outer: Any) -> None:
    """A cluster is made on this machine's engine, never inside one of its hosts."""
    labels = outer.info().get("Labels") or []
    inner = [label for label in labels if label.startswith(f"{LABEL_HOST}=")]
    if inner:
        raise ClusterError(
            f"the Docker engine this command reaches is a cluster host ({inner[0]}): unset "
            "DOCKER_HOST (or DOCKER_CONTEXT, or `docker context use default`) to reach this "
            "machine's engine"
        )
