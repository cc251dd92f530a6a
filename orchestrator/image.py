"""The VM image: find `clocklab-vm:latest`, or build it from wheels made on the host.

A build needs no network inside the container: the app and its dependencies
are built or downloaded here as wheels for the base image's Python version
(`.cache/wheels/pyX.Y/`) and sent with the Dockerfile as the whole context.
The base is `BASE_IMAGE` when set, else `python:3.12-slim` when it is local or
can be pulled, else the local Debian base that `scripts/base-image.sh` builds.

An image built from a checkout carries a digest of the files that go into it
(`clocklab.source`); a checkout whose files changed since gets a fresh image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import queue
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import ClocklabError

IMAGE = "clocklab-vm:latest"
BUILD_STAGE = "clocklab-vm:build"  # kept tagged so that rebuilds reuse its cache
DEFAULT_BASE = "python:3.12-slim"
LOCAL_BASE = "clocklab-base:bookworm"
BASE_ENV = "BASE_IMAGE"
SOURCE_LABEL = "clocklab.source"
BASE_LABEL = "org.opencontainers.image.base.name"
PULL_ANSWER_TIMEOUT = 20.0  # seconds for a registry to start answering a pull
PULL_IDLE_TIMEOUT = 120.0  # seconds without progress before a pull is given up
WHEEL_EPOCH = "315532800"  # 1980-01-01: same source, same wheel, cached layers

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_IMAGE_SOURCES = ("Dockerfile", "pyproject.toml", "vm_node")
_PROJECT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in")
_DOC_FILES = ("README", "LICENSE")
_PROBE = (
    "import platform, sys, venv; "
    "print('%d.%d' % sys.version_info[:2], *platform.libc_ver(), platform.machine())"
)

Progress = Callable[[str], None]


class ImageError(ClocklabError):
    """The VM image could not be found or built; the message says what to do."""


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


def ensure_image(
    client: Any = None,
    *,
    rebuild: bool = False,
    project_root: Path = PROJECT_ROOT,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Return the id of `IMAGE`, building it first if missing, stale or `rebuild`.

    `environ` (default `os.environ`) is read for `BASE_IMAGE` only.
    """
    say = progress or (lambda line: None)
    env = os.environ if environ is None else environ
    client = client or _connect()
    checkout = is_checkout(project_root)
    explicit_base = env.get(BASE_ENV) or None

    existing = _image(client, IMAGE)
    if (
        existing is not None
        and not rebuild
        and (not checkout or _is_current(existing, project_root, explicit_base, say))
    ):
        return str(existing.id)
    if not checkout:
        raise ImageError(
            f"cannot build {IMAGE}: {project_root} is not a clocklab source checkout "
            "(no Dockerfile there); run `clocklab image` (or `make image`) from a checkout"
        )

    with _build_lock(project_root):
        existing = _image(client, IMAGE)  # another process may have built it meanwhile
        if (
            existing is not None
            and not rebuild
            and _is_current(existing, project_root, explicit_base)
        ):
            return str(existing.id)
        base = _choose_base(client, explicit_base, project_root, say)
        python = _probe(client, base)
        say(f"base {base}: Python {python.version} ({python.libc} {python.libc_version})")
        wheels = prepare_wheels(project_root, python, say)
        image_id = _build(client, project_root, base, wheels, say)
        _prune_leftovers(client)  # the image this one replaced, old build stages
    return image_id


def _is_current(
    image: Any, root: Path, explicit_base: str | None, say: Progress | None = None
) -> bool:
    """Whether `image` was built from these sources (and on `explicit_base`, if given)."""
    labels = image.labels or {}
    if explicit_base and labels.get(BASE_LABEL) != explicit_base:
        if say:
            say(f"{IMAGE} was built on {labels.get(BASE_LABEL)}; rebuilding on {explicit_base}")
        return False
    if labels.get(SOURCE_LABEL) != source_digest(root):
        if say:
            say(f"the sources changed since {IMAGE} was built; rebuilding it")
        return False
    return True


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One build at a time per checkout (tests, `up` and `image` may race)."""
    path = root / ".cache" / "image.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_image_command(rebuild: bool) -> int:
    """`clocklab image [--rebuild]`: build (or find) the image, print it, return an exit code."""
    started = time.monotonic()
    try:
        client = _connect()
        image_id = ensure_image(client, rebuild=rebuild, progress=_print_progress)
        size = client.images.get(image_id).attrs["Size"]
    except ClocklabError as e:
        print(f"clocklab image: {e}", file=sys.stderr)
        return e.exit_code
    took = time.monotonic() - started
    print(f"{IMAGE} {image_id.removeprefix('sha256:')[:12]} {size / 1e6:.0f} MB ({took:.1f} s)")
    return 0


def is_checkout(root: Path) -> bool:
    """Whether `root` is a source checkout that can build the image."""
    return all((root / name).exists() for name in _IMAGE_SOURCES)


def source_digest(root: Path) -> str:
    """sha256 over the files that decide what the image contains."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _source_files(root: Path) -> Iterator[Path]:
    for name in _IMAGE_SOURCES:
        path = root / name
        if path.is_file():
            yield path
        else:
            yield from (p for p in path.rglob("*") if p.is_file() and _is_source(p))


def _is_source(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


# --- the base image ---------------------------------------------------------


def _choose_base(client: Any, explicit: str | None, root: Path, say: Progress) -> str:
    if explicit:
        if _image(client, explicit) is None:
            error = _pull(client, explicit, say)
            if error:
                raise ImageError(
                    f"{BASE_ENV}={explicit} is not a local image and cannot be pulled: {error}"
                )
        return explicit
    if _image(client, DEFAULT_BASE) is not None:
        return DEFAULT_BASE
    error = _pull(client, DEFAULT_BASE, say)
    if error is None:
        return DEFAULT_BASE
    say(f"{DEFAULT_BASE} cannot be pulled ({error}); using the local base {LOCAL_BASE}")
    if _image(client, LOCAL_BASE) is None:
        _build_local_base(root, say)
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
            return _explain(event)
        if "error" in event:
            return str(event["error"])


def _build_local_base(root: Path, say: Progress) -> None:
    script = root / "scripts" / "base-image.sh"
    say(f"building the local base {LOCAL_BASE} with {script.relative_to(root)} (about 10 s)")
    env = {**os.environ, "CLOCKLAB_BASE_IMAGE": LOCAL_BASE}
    lines = _stream([str(script)], cwd=root, env=env, say=say)
    if lines.returncode != 0:
        raise ImageError(
            f"{script.relative_to(root)} failed (exit {lines.returncode}): {lines.tail()}\n"
            f"Fix that (as root: `make base-image`), or set {BASE_ENV} to a local image "
            "that has python3 >= 3.11, then run `clocklab image` again"
        )


def _probe(client: Any, base: str) -> BasePython:
    try:
        out = client.containers.run(
            base, entrypoint=["python3", "-c", _PROBE], remove=True, network_disabled=True
        )
        python = BasePython.from_probe(out.decode())
    except Exception as e:
        raise ImageError(
            f"the base image {base} has no usable python3 with its venv module: {_explain(e)}"
        ) from e
    if python.libc != "glibc":
        raise ImageError(
            f"the base image {base} uses {python.libc or 'an unknown C library'}: "
            "wheels are fetched for glibc (manylinux) only; pick a Debian-like base"
        )
    if tuple(map(int, python.version.split("."))) < (3, 11):
        raise ImageError(f"the base image {base} has Python {python.version}; clocklab needs 3.11+")
    return python


# --- the wheels -------------------------------------------------------------


def prepare_wheels(root: Path, python: BasePython, say: Progress) -> Path:
    """Fill `.cache/wheels/pyX.Y/` with pip, clocklab and its dependencies; return it.

    Works offline once the cache holds what is needed; goes to the index otherwise.
    """
    cache = root / ".cache" / "wheels"
    target = cache / f"py{python.version}"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clocklab-wheel-") as tmp:
        app = _build_app_wheel(root, cache / "build", Path(tmp), say)
        for stale in target.glob("clocklab-*.whl"):
            stale.unlink()
        say(f"fetching wheels for Python {python.version} into {target.relative_to(root)}")
        download = ["download", "--dest", str(target), "--find-links", str(target)]
        download += [*python.pip_target_args(), str(app), "pip"]
        if _pip([*download, "--no-index"]).returncode != 0:
            _pip_or_raise(download, f"fetching the dependencies for Python {python.version}")
    return target


def _build_app_wheel(root: Path, build_cache: Path, tmp: Path, say: Progress) -> Path:
    """Build clocklab's wheel from a clean copy of the sources (no stale build/)."""
    src = tmp / "src"
    src.mkdir()
    for item in root.iterdir():
        if item.is_file() and (item.name in _PROJECT_FILES or item.name.startswith(_DOC_FILES)):
            (src / item.name).write_bytes(item.read_bytes())
        elif item.is_dir() and (item / "__init__.py").is_file():
            _copy_package(item, src / item.name)
    say("building the clocklab wheel")
    build_cache.mkdir(parents=True, exist_ok=True)
    wheel = ["wheel", "--no-deps", "--wheel-dir", str(tmp / "out")]
    wheel += ["--find-links", str(build_cache)]
    env = {**os.environ, "SOURCE_DATE_EPOCH": WHEEL_EPOCH}
    if _pip([*wheel, "--no-index", str(src)], env=env).returncode != 0:
        requires = tomllib.loads((root / "pyproject.toml").read_text())["build-system"]["requires"]
        _pip_or_raise(
            ["download", "--dest", str(build_cache), *requires], "fetching build requirements"
        )
        _pip_or_raise([*wheel, "--no-index", str(src)], "building the clocklab wheel", env=env)
    (built,) = (tmp / "out").glob("clocklab-*.whl")
    return built


def _copy_package(src: Path, dest: Path) -> None:
    for path in src.rglob("*"):
        if path.is_file() and _is_source(path):
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def _pip(args: list[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def _pip_or_raise(args: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    result = _pip(args, env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise ImageError(
            f"{what} failed: pip {' '.join(args[:1])} exited {result.returncode}:\n{tail}"
        )


# --- the build --------------------------------------------------------------


def _build(client: Any, root: Path, base: str, wheels: Path, say: Progress) -> str:
    """Build the build stage (tagged, so it stays cached), then the image."""
    buildargs = {
        "BASE_IMAGE": base,
        "WHEELS": wheels.relative_to(root).as_posix(),
        "VERSION": _version(root),
        "REVISION": _revision(root),
        "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SOURCE_DIGEST": source_digest(root),  # read back as the SOURCE_LABEL
    }
    context = _context(root, wheels)
    say(f"building {IMAGE} on {base}")
    stage_args = {k: buildargs[k] for k in ("BASE_IMAGE", "WHEELS")}
    _docker_build(client, context, BUILD_STAGE, stage_args, say, target="build")
    _docker_build(client, context, IMAGE, buildargs, say)
    return str(client.images.get(IMAGE).id)


def _docker_build(
    client: Any,
    context: bytes,
    tag: str,
    buildargs: dict[str, str],
    say: Progress,
    target: str | None = None,
) -> None:
    output: list[str] = []
    try:
        for event in client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            target=target,
            buildargs=buildargs,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in event:
                raise ImageError(
                    f"docker build of {tag} on {buildargs['BASE_IMAGE']} failed: "
                    f"{event['error'].strip()}\n" + "\n".join(output[-10:])
                )
            for line in str(event.get("stream", "")).splitlines():
                if line.strip():
                    output.append(line.rstrip())
                    say(line.rstrip())
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"docker build of {tag} failed: {_explain(e)}") from e


def _context(root: Path, wheels: Path) -> bytes:
    """The build context: the Dockerfile and one folder of wheels, nothing else."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root / "Dockerfile", arcname="Dockerfile", filter=_plain)
        for wheel in sorted(wheels.glob("*.whl")):
            tar.add(wheel, arcname=wheel.relative_to(root).as_posix(), filter=_plain)
    return buffer.getvalue()


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No times or owners in the context: the same files hit the build cache."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _version(root: Path) -> str:
    try:
        return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


def _revision(root: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


# --- Docker plumbing --------------------------------------------------------


def _connect() -> Any:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except ImportError as e:
        raise ImageError("the Docker SDK is missing: pip install 'clocklab[lab]'") from e
    except Exception as e:
        raise ImageError(f"no Docker engine answers ({_explain(e)}): is dockerd running?") from e
    return client


def _image(client: Any, ref: str) -> Any:
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _prune_leftovers(client: Any) -> None:
    """Remove untagged images of ours (replaced builds, old build stages) no container uses."""
    with contextlib.suppress(Exception):  # another prune is running: it does the same
        client.images.prune(filters={"dangling": True, "label": "clocklab.image"})


def _explain(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()


@dataclass(slots=True)
class _Streamed:
    returncode: int
    lines: list[str]

    def tail(self, n: int = 5) -> str:
        return " / ".join(self.lines[-n:]) or "no output"


def _stream(command: list[str], *, cwd: Path, env: Mapping[str, str], say: Progress) -> _Streamed:
    lines: list[str] = []
    try:
        with subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip())
                say(line.rstrip())
    except OSError as e:
        return _Streamed(127, [str(e)])
    return _Streamed(proc.returncode, lines)


def _print_progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(build_image_command(rebuild="--rebuild" in sys.argv[1:]))
