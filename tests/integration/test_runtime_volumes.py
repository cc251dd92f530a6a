"""The VMs' Python on volumes where the engine reads images through FUSE (runtime.py)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from docker.errors import NotFound
from session import SESSION

from orchestrator.backends.compose import runtime
from orchestrator.engine import LABEL_RUN, LABEL_SESSION

pytestmark = pytest.mark.docker

GONE_IMAGE = "sha256:" + "0" * 64  # an image no engine has: its volumes are orphans
LABELS = {LABEL_RUN: "test-runtime", LABEL_SESSION: SESSION}


@pytest.fixture
def image(docker_client: Any, vm_image: str) -> Iterator[str]:
    """An image of this test's own (the VM image plus a label): its volumes are its own."""
    if docker_client.info().get("Driver") not in runtime.FUSE_DRIVERS:
        pytest.skip("this engine reads images natively: no runtime volumes")
    dockerfile = f"FROM {vm_image}\nLABEL clocklab.test-runtime={SESSION}\n"
    built, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    try:
        yield built.id
    finally:
        for image_id in (built.id, GONE_IMAGE):
            for name in volumes_of(docker_client, image_id):
                docker_client.volumes.get(name).remove(force=True)
        docker_client.images.remove(built.id, force=True)


def volumes_of(client: Any, image_id: str) -> dict[str, str]:
    """{name: created} of the image's runtime volumes."""
    found = client.volumes.list(filters={"label": f"{runtime.LABEL}={image_id}"})
    return {v.name: v.attrs["CreatedAt"] for v in found}


def run_on(client: Any, image_id: str, names: dict[str, str], code: str) -> str:
    mounts = {name: {"bind": runtime.MOUNTS[key], "mode": "ro"} for key, name in names.items()}
    out = client.containers.run(
        image_id, ["-c", code], entrypoint=["/opt/clocklab/bin/python"], volumes=mounts,
        remove=True, network_mode="none", read_only=True, labels=LABELS,
    )  # fmt: skip
    return str(out.decode())


def test_a_vm_runs_its_python_from_the_volumes(docker_client: Any, image: str) -> None:
    names = runtime.prepare(docker_client, image)
    assert set(names) == set(runtime.MOUNTS)
    assert set(volumes_of(docker_client, image)) == {
        runtime.volume_name(image, key) for key in (*runtime.MOUNTS, runtime.READY)
    }
    code = (
        "import vm_node.service, sys\n"
        "mounted = {line.split()[4] for line in open('/proc/self/mountinfo')}\n"
        "print(sorted(mounted & {'/usr', '/opt/clocklab'}), vm_node.service.__file__)"
    )
    out = run_on(docker_client, image, names, code)
    assert out.startswith("['/opt/clocklab', '/usr'] /opt/clocklab/"), out


def test_the_volumes_are_filled_once_per_image(docker_client: Any, image: str) -> None:
    first = runtime.prepare(docker_client, image)
    made = volumes_of(docker_client, image)
    assert runtime.prepare(docker_client, image) == first
    assert volumes_of(docker_client, image) == made  # none made again


def test_volumes_left_unmarked_by_an_interrupted_fill_are_filled_again(
    docker_client: Any, image: str
) -> None:
    for key in runtime.MOUNTS:  # a fill that stopped part way: one file each, and no mark
        name = runtime.volume_name(image, key)
        docker_client.volumes.create(name, labels={runtime.LABEL: image})
        docker_client.containers.run(
            image, ["-c", "open('/mnt/part', 'w').close()"], entrypoint=["python3"],
            volumes={name: {"bind": "/mnt", "mode": "rw"}}, user="0", remove=True,
            network_mode="none", labels=LABELS,
        )  # fmt: skip
    names = runtime.prepare(docker_client, image)
    out = run_on(docker_client, image, names, "import os, structlog; print(os.listdir('/usr'))")
    assert "part" not in out and "bin" in out, out


def test_volumes_of_a_removed_image_go_unless_a_container_mounts_them(
    docker_client: Any, image: str
) -> None:
    # two orphans of a gone image, one of them in use, and its mark
    used, unused, mark = (runtime.volume_name(GONE_IMAGE, k) for k in ("usr", "venv", "ready"))
    for name in (used, unused, mark):
        docker_client.volumes.create(name, labels={runtime.LABEL: GONE_IMAGE})
    holder = docker_client.containers.create(
        image, volumes={used: {"bind": "/mnt", "mode": "ro"}}, labels=LABELS
    )
    try:
        runtime.prepare(docker_client, image)  # a fill: it removes orphans
        assert set(volumes_of(docker_client, GONE_IMAGE)) == {used, mark}
        holder.remove()
        docker_client.volumes.get(runtime.volume_name(image, runtime.READY)).remove()
        runtime.prepare(docker_client, image)  # fills again
        assert volumes_of(docker_client, GONE_IMAGE) == {}
    finally:
        with contextlib.suppress(NotFound):
            holder.remove(force=True)
