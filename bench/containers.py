"""The Docker side of the benchmarks: the engine, the VM image, and harness containers.

Harness containers run one of this directory's standalone modules (its source
handed to `python -c`: nothing of the host is mounted into them) in the VM
image, under the same restrictions as a VM (read only, no capabilities,
uid 10001). Everything started here carries the
`clocklab.run` label, so `clocklab down` removes whatever a crash left, and
is removed in `finally`.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from orchestrator.engine import Endpoint

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = "/opt/clocklab/bin/python"
# A harness container runs as restricted as a VM does (compose/stack.yaml).
AS_A_VM: dict[str, Any] = {
    "user": "10001:10001",
    "read_only": True,
    "tmpfs": {"/tmp": "size=16m"},
    "cap_drop": ["ALL"],
    "init": True,
}
T = TypeVar("T")


class DockerUnavailable(Exception):
    """No engine, no Compose v2, or no image: the docker rows are skipped, saying why."""


@dataclass(frozen=True, slots=True)
class Docker:
    client: Any
    endpoint: Endpoint
    image: str  # the VM image's id
    run: str  # the clocklab.run label of everything this bench run starts
    session: str  # its clocklab.session label

    @classmethod
    def connect(cls) -> Docker:
        from orchestrator.backends.compose.docker_compose import Compose
        from orchestrator.engine import connect_from_env
        from orchestrator.errors import ClocklabError
        from orchestrator.image import ensure_image

        try:
            engine = connect_from_env()
            Compose(engine.endpoint).version()
            image = ensure_image(engine.client, progress=lambda line: print(f"  image: {line}"))
        except ClocklabError as e:
            raise DockerUnavailable(str(e)) from None
        run = f"bench-{secrets.token_hex(3)}"
        return cls(engine.client, engine.endpoint, image, run, engine.session)

    @property
    def labels(self) -> dict[str, str]:
        return {
            "clocklab.run": self.run,
            "clocklab.session": self.session,
            "clocklab.experiment": "bench",
        }

    def start(
        self,
        module: str,
        args: Sequence[str],
        *,
        network: str | None = None,
        name: str | None = None,
    ) -> Any:
        """A detached harness container running bench/<module>.py ARGS."""
        source = (BENCH_DIR / f"{module}.py").read_text(encoding="utf-8")
        return self.client.containers.run(
            self.image,
            entrypoint=[PYTHON, "-c", source],
            command=list(args),
            detach=True,
            name=name,
            hostname=name,
            network=network,
            network_mode="none" if network is None else None,
            labels=self.labels,
            **AS_A_VM,
        )

    def output(self, container: Any, timeout: float = 300) -> bytes:
        """Wait for a harness container to exit; its stdout (raises on a non-zero exit)."""
        status = container.wait(timeout=timeout)
        out: bytes = container.logs(stdout=True, stderr=False)
        if status.get("StatusCode") != 0:
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
            raise RuntimeError(f"{container.name} exited {status}: {err.strip()[-500:]}")
        return out

    def remove(self, container: Any) -> None:
        with contextlib.suppress(Exception):  # already gone: fine
            container.remove(force=True)

    @contextlib.contextmanager
    def network(self) -> Iterator[str]:
        """A labelled bridge network for harness containers; it and they go afterwards."""
        name = f"{self.run}-net"
        network = self.client.networks.create(name, labels=self.labels)
        try:
            yield name
        finally:
            self.remove_all()
            with contextlib.suppress(Exception):  # another run's leak check may have been first
                network.remove()

    def remove_all(self) -> None:
        """Every container of this bench run (harness ones; trials tear down their own)."""
        for container in self.client.containers.list(
            all=True, filters={"label": f"clocklab.run={self.run}"}
        ):
            with contextlib.suppress(Exception):
                container.remove(force=True)


def retried(what: str, attempt: Callable[[], T], attempts: int = 3) -> T:
    """Run `attempt` again when it fails: other test runs on this engine remove containers
    labelled clocklab.run that appear while they run (their leak check), ours included."""
    for n in range(1, attempts + 1):
        try:
            return attempt()
        except Exception as e:
            if n == attempts:
                raise
            print(f"  {what} failed ({type(e).__name__}: {e}); once more", file=sys.stderr)
    raise AssertionError("unreachable")
