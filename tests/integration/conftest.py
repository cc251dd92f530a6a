"""What the Docker tests share.

- `docker_client`: a Docker SDK client; where no engine answers, the test is
  skipped and says why (or fails, under CLOCKLAB_REQUIRE_DOCKER=1, as in CI).
- `vm_image`: the VM image's id, built once per session when missing or stale.
- After every test in this folder, no container, network or volume of this test
  session (label `clocklab.session`, see session.py) that appeared during the
  test may remain: they are removed and the test errors at teardown, naming
  them. Trials others run on the same engine carry other sessions: untouched.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from session import OURS

from orchestrator.errors import ImageError
from orchestrator.image import ensure_image

REQUIRE_DOCKER = "CLOCKLAB_REQUIRE_DOCKER"
# testcontainers' reaper image cannot be pulled where there is no registry; every
# test here removes what it starts in `finally`, and the leak check below verifies it.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@functools.cache
def _engine() -> tuple[Any, str]:
    """(client, "") where an engine answers, else (None, why not). Asked once."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as e:
        reason = str(getattr(e, "explanation", None) or e).strip() or type(e).__name__
        return None, f"no Docker engine answers ({reason})"
    return client, ""


@pytest.fixture(scope="session")
def docker_client() -> Any:
    client, why_not = _engine()
    if client is None:
        if os.environ.get(REQUIRE_DOCKER) == "1":
            pytest.fail(f"{why_not}, and {REQUIRE_DOCKER}=1", pytrace=False)
        pytest.skip(why_not)
    return client


@pytest.fixture(scope="session")
def vm_image(docker_client: Any) -> str:
    try:
        return ensure_image(docker_client)
    except ImageError as e:
        pytest.fail(f"the VM image could not be built: {e}", pytrace=False)


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    client, _ = _engine()
    if client is None:
        yield
        return
    before = _labelled(client)
    yield
    leaked = {key: name for key, name in _labelled(client).items() if key not in before}
    if leaked:
        _remove(client, leaked)
        names = ", ".join(f"{kind} {name}" for (kind, _), name in sorted(leaked.items()))
        pytest.fail(f"{request.node.name} left behind (now removed): {names}", pytrace=False)


def _labelled(client: Any) -> dict[tuple[str, str], str]:
    """{(kind, id): name} of every container and network of this test session."""
    found = {
        ("container", c.id): c.name
        for c in client.containers.list(all=True, filters={"label": OURS})
    }
    found |= {("network", n.id): n.name for n in client.networks.list(filters={"label": OURS})}
    found |= {("volume", v.name): v.name for v in client.volumes.list(filters={"label": OURS})}
    return found


def _remove(client: Any, leaked: dict[tuple[str, str], str]) -> None:
    import docker.errors

    # Containers first: a network cannot go while containers are attached.
    for kind, ident in sorted(leaked, key=lambda key: key[0] != "container"):
        try:
            if kind == "container":
                client.containers.get(ident).remove(force=True, v=True)
            elif kind == "volume":
                client.volumes.get(ident).remove(force=True)
            else:
                client.networks.get(ident).remove()
        except docker.errors.NotFound:
            pass
