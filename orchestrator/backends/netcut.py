"""Network cuts: containers cut off from some addresses by iptables in their own network
namespace, as Pumba and Blockade do it. The VMs take no part.

Beside each container that a cut may reach runs a helper: the VM image, as root with
NET_ADMIN and NET_RAW only (legacy iptables opens a raw socket), in the container's
network namespace (`network_mode=container:<id>`), idle. Made ahead of the fault
(starting a container takes longer than a cut may), it hooks an empty chain of
clocklab's into INPUT and OUTPUT. A cut fills that chain with DROPs for the other side's
addresses, one `exec` per container, all at once; healing flushes the chain. Connections
across the cut hang, as on a real network; links within a side never notice. Every
helper carries the trial's labels, so a cleanup finds it.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.errors import TrialError

CHAIN = "CLOCKLAB"
LABEL_HELPER = "clocklab.netcut"  # the VM a helper serves
# nft first; legacy where the kernel lacks nf_tables. The helper says which works.
SETUP = (
    "for v in nft legacy; do "
    f"iptables-$v -N {CHAIN} 2>/dev/null "
    f"&& iptables-$v -I INPUT -j {CHAIN} && iptables-$v -I OUTPUT -j {CHAIN} "
    "&& echo $v && exit 0; done; exit 1"
)
IDLE = ["python", "-c", "import signal; signal.pause()"]
MAX_PARALLEL = 8  # requests to the engines at once

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """VM `vm`'s container, reached through `client` (the engine of the node it runs on)."""

    vm: int
    client: Any
    container: str  # its id


@dataclass(slots=True)
class _Helper:
    target: Target
    container: Any
    iptables: str  # "iptables-nft" or "iptables-legacy"


class NetworkCutter:
    """Cuts some VMs' containers off from addresses, through a helper beside each."""

    def __init__(self, image: str, labels: Mapping[str, str]) -> None:
        """`image` has iptables (the VM image); `labels` mark the trial's containers."""
        self.image = image
        self.labels = dict(labels)
        self._helpers: dict[int, _Helper] = {}
        self._drops: dict[int, list[str]] = {}  # the cut in force, by VM
        self._lock = threading.Lock()

    def prepare(self, targets: Iterable[Target]) -> None:
        """A helper beside each target, in its present network namespace: made where
        missing or beside an earlier container (a VM started again gets a new one)."""
        stale = [t for t in targets if self._current(t) is None]
        _each(stale, self._make_helper)

    def renew(self, target: Target) -> None:
        """The target's container was started again, in a new network namespace: a new
        helper beside it, and the cut in force (if any) made there too."""
        self._forget(target.vm)
        self.prepare([target])
        if target.vm in self._drops:
            self.cut({target: self._drops[target.vm]})

    def _forget(self, vm: int) -> None:
        with self._lock:
            helper = self._helpers.pop(vm, None)
        if helper is not None:
            _remove(helper.container)

    def cut(self, drops: Mapping[Target, list[str]]) -> None:
        """Each target drops every packet to and from its addresses, replacing any cut before."""
        self.prepare(drops)

        def cut_one(target: Target) -> None:
            helper = self._helpers[target.vm]
            lines = ["*filter", f":{CHAIN} - [0:0]"]
            for address in drops[target]:
                lines += [f"-A {CHAIN} -s {address} -j DROP", f"-A {CHAIN} -d {address} -j DROP"]
            lines.append("COMMIT")
            script = f"printf '%s\\n' {shlex.join(lines)} | {helper.iptables}-restore --noflush"
            with self._lock:
                self._drops[target.vm] = drops[target]
            self._run(helper, script)

        _each(list(drops), cut_one)

    def heal(self) -> None:
        """Every cut undone: each chain flushed. A VM started again meanwhile had none."""
        with self._lock:
            cut = [self._helpers[vm] for vm in sorted(self._drops) if vm in self._helpers]
            self._drops.clear()
        _each(cut, lambda helper: self._run(helper, f"{helper.iptables} -F {CHAIN}"))

    def remove(self) -> None:
        """Remove every helper; safe to call twice."""
        with self._lock:
            helpers = list(self._helpers.values())
            self._helpers.clear()
            self._drops.clear()
        _each([h.container for h in helpers], _remove)

    def _current(self, target: Target) -> _Helper | None:
        helper = self._helpers.get(target.vm)
        if helper is not None and helper.target.container != target.container:
            self._forget(target.vm)
            return None
        return helper

    def _make_helper(self, target: Target) -> None:
        from docker.errors import APIError

        labels = {**self.labels, LABEL_HELPER: str(target.vm)}
        try:
            container = target.client.containers.run(
                self.image,
                entrypoint=IDLE,
                user="0",
                network_mode=f"container:{target.container}",
                cap_drop=["ALL"],
                cap_add=["NET_ADMIN", "NET_RAW"],
                labels=labels,
                detach=True,
                auto_remove=True,
            )
        except APIError as e:
            raise TrialError(
                f"vm{target.vm}: cannot start the helper that cuts its network: "
                f"{e.explanation or e}"
            ) from None
        helper = _Helper(target, container, iptables="")
        with self._lock:
            self._helpers[target.vm] = helper
        helper.iptables = "iptables-" + self._run(helper, SETUP).strip()

    def _run(self, helper: _Helper, script: str) -> str:
        from docker.errors import APIError

        vm = helper.target.vm
        try:
            code, output = helper.container.exec_run(["sh", "-c", script])
        except APIError as e:
            raise TrialError(f"vm{vm}: the network cut failed: {e.explanation or e}") from None
        said = str(output.decode(errors="replace")).strip()
        if code != 0:
            raise TrialError(
                f"vm{vm}: iptables failed in the helper beside it (exit {code}): "
                f"{said or 'no output'}; the image needs iptables (`clocklab image` builds it in)"
            )
        return said


def partition_drops(groups: tuple[tuple[int, ...], ...]) -> dict[int, list[int]]:
    """Which VMs each VM drops, so that no packet crosses between `groups`: every group but
    the (first) largest drops all VMs outside it. Rules on one side cut both directions."""
    stay = max(groups, key=len)
    return {
        vm: sorted(other for g in groups if g is not group for other in g)
        for group in groups
        if group is not stay
        for vm in group
    }


def _each(items: list[T], act: Callable[[T], object]) -> None:
    """`act` on every item at once; the first failure is raised once all have finished."""
    if len(items) <= 1:
        for item in items:
            act(item)
        return
    with ThreadPoolExecutor(min(len(items), MAX_PARALLEL)) as pool:
        futures = [pool.submit(act, item) for item in items]
    errors = [e for f in futures if (e := f.exception()) is not None]
    if errors:
        raise errors[0]


def _remove(container: Any) -> None:
    from docker.errors import APIError, NotFound

    try:
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as e:  # auto_remove already under way
        if "in progress" not in str(e):
            raise
