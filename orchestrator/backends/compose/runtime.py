"""The VM image's files on volumes, where the engine reads images through FUSE.

An engine whose storage driver is fuse-overlayfs (rootless engines, engines in
containers) runs one FUSE daemon per container, and every file a VM reads as it
starts, the interpreter and its modules, goes through that daemon. Many VMs
starting at once then wait on their daemons for files that a volume serves
directly.

So such an engine keeps, per VM image, one volume for each directory in MOUNTS,
which the engine fills from the image (it copies an image's files into a new
named volume that a container mounts), and every VM mounts them read-only. They
are made once per image, under a lock on this machine, and used only once a
third volume marks them filled; those of images the engine no longer has go then.
"""

from __future__ import annotations

import fcntl
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from orchestrator.errors import Interrupted
from orchestrator.shield import signals_deferred

FUSE_DRIVERS = frozenset({"fuse-overlayfs"})
MOUNTS = {"usr": "/usr", "venv": "/opt/clocklab"}  # volume key → directory in the image
READY = "ready"  # the key of the volume that marks the others filled
LABEL = "clocklab.runtime"  # on each volume: the id of the image it holds files of


def volume_name(image_id: str, key: str) -> str:
    return f"clocklab-runtime-{image_id.removeprefix('sha256:')[:12]}-{key}"


def prepare(client: Any, image_id: str) -> dict[str, str]:
    """{volume key: name} to mount at MOUNTS[key] in every VM; {} where images are read
    natively. Fills the volumes on the image's first trial on this engine."""
    if client.info().get("Driver") not in FUSE_DRIVERS:
        return {}
    from docker.errors import NotFound

    names = {key: volume_name(image_id, key) for key in MOUNTS}
    with _machine_lock():
        try:
            client.volumes.get(volume_name(image_id, READY))
        except NotFound:
            _fill(client, image_id, names)
            client.volumes.create(volume_name(image_id, READY), labels={LABEL: image_id})
            _remove_orphans(client)
    return names


def _fill(client: Any, image_id: str, names: dict[str, str]) -> None:
    """Fresh volumes, filled by the engine as a container that mounts them is created."""
    from docker.errors import NotFound

    for name in names.values():  # left half-filled by a fill that was interrupted
        with suppress(NotFound):
            client.volumes.get(name).remove(force=True)
        client.volumes.create(name, labels={LABEL: image_id})
    mounts = {name: {"bind": MOUNTS[key], "mode": "ro"} for key, name in names.items()}
    with signals_deferred() as arrived:  # a Ctrl-C here would leave the filler behind
        client.containers.create(image_id, volumes=mounts, labels={LABEL: image_id}).remove()
    if arrived:
        raise Interrupted(f"signal {signal.Signals(arrived[0]).name}")


def _remove_orphans(client: Any) -> None:
    """Volumes of images the engine no longer has (a rebuild prunes the image it replaced).
    Those a trial still mounts stay, and their mark with them."""
    from docker.errors import APIError, ImageNotFound

    images: dict[str, bool] = {}  # image id → the engine still has it
    marks, kept = [], set()
    for volume in client.volumes.list(filters={"label": LABEL}):
        image = (volume.attrs.get("Labels") or {}).get(LABEL, "")
        if image not in images:
            try:
                images[image] = bool(image) and bool(client.images.get(image))
            except ImageNotFound:
                images[image] = False
        if images[image]:
            continue
        if volume.name.endswith(f"-{READY}"):
            marks.append((volume, image))
            continue
        try:
            volume.remove()
        except APIError:  # in use
            kept.add(image)
    for mark, image in marks:
        if image not in kept:
            with suppress(APIError):
                mark.remove()


@contextmanager
def _machine_lock() -> Iterator[None]:
    """Two commands on this machine do not fill the same volumes at once: the second
    would find them half-filled and start its VMs on them."""
    path = os.path.join(tempfile.gettempdir(), "clocklab-runtime.lock")
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
