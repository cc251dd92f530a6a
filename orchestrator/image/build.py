"""The VM image: find `clocklab-vm:latest`, or build it from wheels made on the host.

A build needs no network inside the container: the app and its dependencies
are built or downloaded here as wheels for the base image's Python version
(`.cache/wheels/pyX.Y/`, wheels.py) and sent with the Dockerfile as the whole
context. An image built from a checkout carries a digest of the files that go
into it (`clocklab.source`); a checkout whose files changed since gets a fresh image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import tarfile
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import CommandError, ImageError
from orchestrator.image.base import BASE_ENV, choose_base, explain, find_image, probe
from orchestrator.image.progress import Progress
from orchestrator.image.wheels import is_source, prepare_wheels
from orchestrator.resources import CHECKOUT
from orchestrator.subprocesses import run_command

IMAGE = "clocklab-vm:latest"
BUILD_STAGE = "clocklab-vm:build"  # kept tagged so that rebuilds reuse its cache
SOURCE_LABEL = "clocklab.source"
BASE_LABEL = "org.opencontainers.image.base.name"
SOURCE_TAG_PREFIX = "src-"
KEEP_SOURCE_TAGS = 8  # builds of other sources kept for other checkouts on this engine
_IMAGE_SOURCES = ("Dockerfile", "pyproject.toml", "vm_node")


def ensure_image(
    client: Any,
    *,
    rebuild: bool = False,
    project_root: Path = CHECKOUT,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Return the id of `IMAGE`, building it first if missing, stale or `rebuild`.

    `environ` (default `os.environ`) is read for `BASE_IMAGE` only.
    """
    say = progress or (lambda line: None)
    env = os.environ if environ is None else environ
    checkout = is_checkout(project_root)
    explicit_base = env.get(BASE_ENV) or None

    # Checkouts that share an engine each find their own build by its source tag.
    existing = find_image(client, source_tag(project_root)) if checkout else None
    if existing is None or not _is_current(existing, project_root, explicit_base):
        existing = find_image(client, IMAGE)
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
        # another process may have built it meanwhile
        existing = find_image(client, source_tag(project_root))
        if (
            existing is not None
            and not rebuild
            and _is_current(existing, project_root, explicit_base)
        ):
            return str(existing.id)
        base = choose_base(client, explicit_base, project_root, say)
        python = probe(client, base)
        say(f"base {base}: Python {python.version} ({python.libc} {python.libc_version})")
        wheels = prepare_wheels(project_root, python, say)
        image_id = _build(client, project_root, base, wheels, say)
        _prune_leftovers(client)  # the image this one replaced, old build stages
    return image_id


def source_tag(root: Path) -> str:
    """`clocklab-vm:src-<digest>`: the build of these sources, whoever rebuilt :latest since."""
    return f"{IMAGE.split(':')[0]}:{SOURCE_TAG_PREFIX}{source_digest(root)[:12]}"


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
            yield from (p for p in path.rglob("*") if p.is_file() and is_source(p))


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
    image = client.images.get(IMAGE)
    repository, tag = source_tag(root).split(":")
    image.tag(repository, tag)
    return str(image.id)


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
        raise ImageError(f"docker build of {tag} failed: {explain(e)}") from e


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
    try:
        return run_command(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], 20).strip()
    except CommandError:
        return "unknown"


def _prune_leftovers(client: Any) -> None:
    """Remove untagged images of ours (replaced builds, old build stages) and all but the
    newest source-tagged builds, where no container uses them."""
    with contextlib.suppress(Exception):  # another prune is running: it does the same
        client.images.prune(filters={"dangling": True, "label": "clocklab.image"})
    repository = IMAGE.split(":")[0]
    tagged = [
        (image.attrs.get("Created", ""), tag)
        for image in client.images.list(name=repository)
        for tag in image.tags
        if tag.startswith(f"{repository}:{SOURCE_TAG_PREFIX}")
    ]
    for _, tag in sorted(tagged, reverse=True)[KEEP_SOURCE_TAGS:]:
        with contextlib.suppress(Exception):  # in use by a container, or gone already
            client.images.remove(tag)
