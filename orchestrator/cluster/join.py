"""`clocklab cluster join`: machines reached over ssh (or by their contexts) made a cluster.

Join checks every machine before it changes anything (machines.py), then
forms a swarm where there is none (the first machine manages it, each
advertising the address it is reached by) or uses the one the machines are
in, makes the contexts `<name>` (the manager) and `<name>-<hostname>` that
the swarm backend looks for, and loads the VM image into every node through
that node's own engine. Its record (record.py) says what it made, so that
`down` removes that and leaves a swarm it found as it was.

Nothing here looks at the simulated cluster's labels: a simulated host made
bare (`cluster up --bare`) is joined as a real machine is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.cluster.contexts import JOIN_MARK, MARK, Context, Contexts
from orchestrator.cluster.errors import ClusterError
from orchestrator.cluster.formation import (
    SWARM_PORT,
    form_swarm,
    image_name,
    ship_image,
    wait_until_ready,
)
from orchestrator.cluster.machines import (
    ENGINE_API_TIMEOUT,
    Machine,
    advertise_address,
    check,
    parse_target,
    probe,
)
from orchestrator.cluster.record import JoinedNode, JoinRecord, Records
from orchestrator.engine import client_for, resolve_endpoint
from orchestrator.errors import ConfigError
from orchestrator.image import ensure_image
from orchestrator.shield import signals_deferred

Progress = Callable[[str], None]


class Join:
    """Joins machines into the cluster `name`, shipping the VM image from `source` (this
    machine's engine, where the image is built)."""

    def __init__(
        self,
        name: str,
        source: Any,
        say: Progress,
        contexts: Contexts | None = None,
        records: Records | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.name = name
        self.source = source
        self.contexts = contexts or Contexts()
        self.records = records or Records.from_env(environ)
        self._say = say
        self._environ = environ

    # --- join -----------------------------------------------------------------

    def join(self, given: Sequence[str]) -> JoinRecord:
        """The cluster of the machines `given` (ssh://USER@HOST[:PORT] or context names)."""
        if not given:
            raise ClusterError("name at least one machine: ssh://USER@HOST or a context")
        if repeated := sorted({g for g in given if list(given).count(g) > 1}):
            raise ClusterError(f"{', '.join(repeated)} given more than once")
        targets = [parse_target(g, self._environ) for g in given]
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            machines = list(pool.map(probe, targets))
        image_id = ensure_image(self.source, progress=self._say)
        image = image_name(self.source, image_id)
        architecture = str(self.source.images.get(image_id).attrs.get("Architecture"))
        for machine in machines:
            self._say(
                f"{machine.hostname}: Docker {machine.version} ({machine.architecture}) "
                f"at {machine.target.given}, swarm {machine.swarm_state}"
            )
            check(machine, architecture)
        _refuse_twins(machines)
        prior = self.records.load(self.name)
        self._refuse_conflicts(machines, prior)
        record = self._plan(machines, prior)
        self.records.save(record)
        try:
            self._form(machines, record)
            made = self.contexts.ensure(_contexts(record, machines))
            if made:
                self._say(f"contexts: {', '.join(made)}")
            ship_image(self.source, image, [(m.hostname, m.client) for m in machines], self._say)
        except BaseException:
            if prior is None:  # undo this call; an earlier join's cluster stays as it was
                with signals_deferred():
                    self.down()
            raise
        finally:
            for machine in machines:
                machine.client.close()
        return record

    def _refuse_conflicts(self, machines: list[Machine], prior: JoinRecord | None) -> None:
        simulated = [
            c.name
            for c in self.contexts.existing().values()
            if (c.name == self.name or c.name.startswith(f"{self.name}-"))
            and c.description.startswith(MARK)
        ]
        if simulated:
            raise ClusterError(
                f"the simulated cluster {self.name} has the contexts {', '.join(simulated)}: "
                f"`clocklab cluster down` first, or join under another --name"
            )
        if prior is not None:
            named = {m.hostname for m in machines}
            if left_out := [n.hostname for n in prior.nodes if n.hostname not in named]:
                raise ClusterError(
                    f"{self.name} was joined with {', '.join(left_out)} too: name every machine "
                    "again, or `clocklab cluster down` first"
                )

    def _plan(self, machines: list[Machine], prior: JoinRecord | None) -> JoinRecord:
        """Which machine manages, whether join makes the swarm, which nodes join adds."""
        active = [m for m in machines if m.swarm_state == "active"]
        if not active:
            manager, swarm_made = machines[0], True
        else:
            managers = [m for m in active if m.is_manager]
            if not managers:
                raise ClusterError(
                    f"{', '.join(m.hostname for m in active)} are in a swarm whose manager is "
                    "not among the machines given: name a manager of that swarm too, or "
                    "`docker swarm leave` on them"
                )
            manager = managers[0]
            members = {node.id for node in manager.client.nodes.list()}
            if strangers := [m.hostname for m in active if m.node_id not in members]:
                raise ClusterError(
                    f"{', '.join(strangers)} are in another swarm than {manager.hostname}'s: "
                    "`docker swarm leave` on them, or join them apart"
                )
            swarm_made = prior.swarm_made if prior is not None else False

        def added(machine: Machine) -> bool:
            before = prior.node(machine.hostname) if prior is not None else None
            return machine.swarm_state != "active" or (before is not None and before.joined_swarm)

        nodes = tuple(
            JoinedNode(
                hostname=m.hostname,
                given=m.target.given,
                context=f"{self.name}-{m.hostname}",
                manager=m is manager,
                joined_swarm=m is not manager and added(m),
            )
            for m in machines
        )
        return JoinRecord(self.name, swarm_made, nodes)

    def _form(self, machines: list[Machine], record: JoinRecord) -> None:
        import docker.errors

        by_name = {m.hostname: m for m in machines}
        manager = by_name[record.manager.hostname]
        address = advertise_address(manager.target.endpoint)
        workers = [
            (m.client, advertise_address(m.target.endpoint)) for m in machines if m is not manager
        ]
        try:
            for line in form_swarm(manager.client, address, workers):
                self._say(line)
        except docker.errors.APIError as e:
            raise ClusterError(
                f"the swarm could not be formed: {e.explanation or e}. Every machine must "
                f"reach {manager.hostname} at {address or 'its address'}:{SWARM_PORT}/tcp, "
                "and each other on 7946/tcp+udp and 4789/udp"
            ) from None
        wait_until_ready(manager.client, list(by_name), context=self.name)
        self._say(f"swarm: {len(machines)} nodes ready, {manager.hostname} manages")

    # --- down -----------------------------------------------------------------

    def down(self) -> list[str]:
        """Undo what join made: the nodes it added leave the swarm, the swarm goes if join made
        it, then its contexts and its record. What it found stays."""
        import docker.errors

        record = self.records.load(self.name)
        if record is None:
            return []
        done: list[str] = []
        clients = {node.hostname: self._reach(node, done) for node in record.nodes}
        manager = clients[record.manager.hostname]
        for node in record.nodes:
            client = clients[node.hostname]
            if node.manager or client is None or not (node.joined_swarm or record.swarm_made):
                continue
            node_id = _leave(client, force=False)
            if node_id is not None:
                done.append(f"{node.hostname} left the swarm")
                if manager is not None and not record.swarm_made:
                    # the swarm join found forgets the node too
                    with contextlib.suppress(docker.errors.DockerException):
                        manager.nodes.get(node_id).remove(force=True)
        dissolve = record.swarm_made and manager is not None
        if dissolve and _leave(manager, force=True) is not None:
            done.append(f"swarm on {record.manager.hostname} dissolved")
        for client in clients.values():
            if client is not None:
                client.close()
        ours = {record.name, *(node.context for node in record.nodes)}
        existing = self.contexts.existing()
        gone = sorted(
            n for n in ours if n in existing and existing[n].description.startswith(JOIN_MARK)
        )
        self.contexts.remove_names(gone)
        done += [f"context {name}" for name in gone]
        self.records.remove(self.name)
        return done

    def _reach(self, node: JoinedNode, done: list[str]) -> Any:
        """The node's engine, by the context join made (else as it was given); None, and a
        line saying what to do by hand, where it does not answer."""
        import docker.errors

        for name in (node.context, node.given):
            try:
                endpoint = (
                    parse_target(name, self._environ).endpoint
                    if "://" in name
                    else resolve_endpoint(name, self._environ)
                )
                client = client_for(endpoint, ENGINE_API_TIMEOUT)
                client.ping()
                return client
            except (ConfigError, ClusterError, docker.errors.DockerException):
                continue
        done.append(
            f"{node.hostname} not reached: leave its swarm by hand there if needed "
            "(`docker swarm leave`)"
        )
        return None


def ship_to_joined(record: JoinRecord, source: Any, say: Progress) -> str:
    """The VM image's id: built on `source` (this machine's engine) where stale, then loaded
    into each node of `record` lacking it, through the context join made for the node."""
    image_id = ensure_image(source, progress=say)
    clients = [
        (node.hostname, client_for(resolve_endpoint(node.context, os.environ), ENGINE_API_TIMEOUT))
        for node in record.nodes
    ]
    try:
        ship_image(source, image_name(source, image_id), clients, say)
    finally:
        for _, client in clients:
            client.close()
    return image_id


def _contexts(record: JoinRecord, machines: list[Machine]) -> list[Context]:
    """The manager's context and one per node, each pointing where the machine was reached
    (copied from the user's context, TLS material and all, where it was named by one)."""
    by_name = {m.hostname: m for m in machines}

    def context(name: str, node: JoinedNode, role: str) -> Context:
        target = by_name[node.hostname].target
        return Context(
            name,
            target.endpoint.host,
            f"{JOIN_MARK} {record.name}: {role}",
            source=target.context or "",
        )

    manager = record.manager
    wanted = [context(record.name, manager, f"manager {manager.hostname}")]
    return wanted + [context(node.context, node, node.hostname) for node in record.nodes]


def _refuse_twins(machines: list[Machine]) -> None:
    """Two machines with one hostname would share one context: refuse them."""
    seen: dict[str, str] = {}
    for machine in machines:
        if machine.hostname in seen:
            raise ClusterError(
                f"{seen[machine.hostname]} and {machine.target.given} are both "
                f"{machine.hostname} (the same engine, or two machines of one hostname): "
                "give each machine once, and each a hostname of its own"
            )
        seen[machine.hostname] = machine.target.given


def _leave(client: Any, force: bool) -> str | None:
    """Have the engine leave its swarm; its node id, or None where it was in none."""
    import docker.errors

    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active":
        return None
    try:
        client.swarm.leave(force=force)
    except docker.errors.APIError as e:
        raise ClusterError(f"{client.info().get('Name')} could not leave its swarm: {e}") from None
    return str(swarm.get("NodeID"))
