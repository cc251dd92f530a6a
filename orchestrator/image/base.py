"""The base of the VM image: chosen, pulled or built locally, and probed for its Python.

The base is `BASE_IMAGE` when set, else `python:3.12-slim` when it is local or
can be pulled, else the local Debian base that `scripts/base-image.sh` builds.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import CommandError, ImageError
from orchestrator.image.progress import Progress
from orchestrator.subprocesses import stream_command

DEFAULT_BASE = "python:3.12-slim"
LOCAL_BASE = "clocklab-base:bookworm"
BASE_ENV = "BASE_IMAGE"
IPTABLES_LABEL = "clocklab.iptables"  # on a local base that has iptables (partitions need it)
PULL_ANSWER_TIMEOUT = 20.0  # seconds for a registry to start answering a pull
PULL_IDLE_TIMEOUT = 120.0  # seconds without progress before a pull is given up
PROBE = (
    "import platform, sys, venv; "
    "print('%d.%d' % sys.version_info[:2], *platform.libc_ver(), platform.machine())"
)


@dataclass(frozen=True, slots=True)
class BasePython:
    """What the wheels must match: the base image's Python, C library and CPU."""

    version: str  # "3.11"
    libc: str  # "glibc"
    libc_version: str  # "2.36"
    machine: str  # "x86_64"

    @classmethod
    def from_probe(cls, line: str) -> BasePython:
        version, libc, libc_version, machine = line.split()
        return cls(version, libc, libc_version, machine)

    def pip_target_args(self) -> list[str]:
        """`pip download` flags that select binary wheels for this interpreter."""
        digits = self.version.replace(".", "")
        args = ["--only-binary=:all:", "--python-version", self.version, "--implementation", "cp"]
        for abi in (f"cp{digits}", "abi3", "none"):
            args += ["--abi", abi]
        minor = int(self.libc_version.split(".")[1])
        platforms = [f"manylinux_2_{m}_{self.machine}" for m in range(minor, 4, -1)]
        platforms += [f"manylinux2014_{self.machine}", "any"]
        if self.machine in ("x86_64", "i686"):
            platforms += [f"manylinux2010_{self.machine}", f"manylinux1_{self.machine}"]
        for platform in platforms:
            args += ["--platform", platform]
        return args


def choose_base(client: Any, explicit: str | None, root: Path, say: Progress) -> str:
    if explicit:
        if find_image(client, explicit) is None:
            error = _pull(client, explicit, say)
            if error:
                raise ImageError(
                    f"{BASE_ENV}={explicit} is not a local image and cannot be pulled: {error}"
                )
        return explicit
    if find_image(client, DEFAULT_BASE) is not None:
        return DEFAULT_BASE
    error = _pull(client, DEFAULT_BASE, say)
    if error is None:
        return DEFAULT_BASE
    say(f"{DEFAULT_BASE} cannot be pulled ({error}); using the local base {LOCAL_BASE}")
    local = find_image(client, LOCAL_BASE)
    if local is None or (local.labels or {}).get(IPTABLES_LABEL) != "yes":
        _build_local_base(root, say, force=local is not None)
    return LOCAL_BASE


def _pull(client: Any, ref: str, say: Progress) -> str | None:
    """Pull `ref`; None on success, else why not. A silent registry is given up on."""
    from docker.utils import parse_repository_tag

    say(f"pulling {ref}")
    repository, tag = parse_repository_tag(ref)
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def pull() -> None:
        try:
            for event in client.api.pull(repository, tag or None, stream=True, decode=True):
                events.put(event)
            events.put(done)
        except Exception as e:  # handed to the waiting thread
            events.put(e)

    threading.Thread(target=pull, name=f"pull {ref}", daemon=True).start()
    timeout = PULL_ANSWER_TIMEOUT
    while True:
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            return f"no progress from the registry in {timeout:.0f} s"
        timeout = PULL_IDLE_TIMEOUT
        if event is done:
            return None
        if isinstance(event, Exception):
            return explain(event)
        if "error" in event:
            return str(event["error"])


def _build_local_base(root: Path, say: Progress, force: bool) -> None:
    """Build the local base; `force` replaces one made before it carried iptables."""
    script = root / "scripts" / "base-image.sh"
    say(f"building the local base {LOCAL_BASE} with {script.relative_to(root)} (about 10 s)")
    env = {**os.environ, "CLOCKLAB_BASE_IMAGE": LOCAL_BASE}
    try:
        stream_command([str(script), *(["--force"] if force else [])], say, cwd=root, env=env)
    except CommandError as e:
        raise ImageError(
            f"{script.relative_to(root)} failed (exit {e.returncode}): {_tail(e.stderr)}\n"
            f"Fix that (as root: `make base-image`), or set {BASE_ENV} to a local image "
            "that has python3 >= 3.11, then run `clocklab image` again"
        ) from None


def probe(client: Any, base: str) -> BasePython:
    try:
        out = client.containers.run(
            base, entrypoint=["python3", "-c", PROBE], remove=True, network_disabled=True
        )
        python = BasePython.from_probe(out.decode())
    except Exception as e:
        raise ImageError(
            f"the base image {base} has no usable python3 with its venv module: {explain(e)}"
        ) from e
    if python.libc != "glibc":
        raise ImageError(
            f"the base image {base} uses {python.libc or 'an unknown C library'}: "
            "wheels are fetched for glibc (manylinux) only; pick a Debian-like base"
        )
    if tuple(map(int, python.version.split("."))) < (3, 11):
        raise ImageError(f"the base image {base} has Python {python.version}; clocklab needs 3.11+")
    return python


def find_image(client: Any, ref: str) -> Any:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def explain(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()


def _tail(output: str, lines: int = 5) -> str:
    return " / ".join(output.strip().splitlines()[-lines:]) or "no output"
