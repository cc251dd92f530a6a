"""The VM image: small, unprivileged, and happy on a read-only root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from session import SESSION

from orchestrator.engine import LABEL_RUN, LABEL_SESSION
from orchestrator.image import BASE_LABEL, SOURCE_LABEL, source_digest
from orchestrator.image.build import source_tag

pytestmark = pytest.mark.docker

# What the image adds to its base (the venv with clocklab, structlog, orjson):
# measured 1.4 MB. The whole image: 62 MB on the local Debian base, about
# 130 MB on python:3.12-slim.
MAX_ADDED_BYTES = 15_000_000
MAX_IMAGE_BYTES = 160_000_000
# This checkout's build (the vm_image fixture's): :latest may be another checkout's.
THIS_BUILD = source_tag(Path(__file__).resolve().parents[2])

# How compose runs the VMs (issue 3): no capabilities, read-only root, tmpfs /tmp.
HARDENED: dict[str, Any] = {
    "read_only": True,
    "tmpfs": {"/tmp": "size=16m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "init": True,
    "labels": {LABEL_RUN: "test-image", LABEL_SESSION: SESSION},
}


def run(client: Any, *command: str, python: bool = False, **options: Any) -> str:
    """Run the image hardened and offline; its output. `python`: command is Python code."""
    entrypoint = ["/opt/clocklab/bin/python", "-c"] if python else None
    out = client.containers.run(
        THIS_BUILD, list(command), entrypoint=entrypoint, remove=True, network_mode="none",
        **HARDENED | options,
    )  # fmt: skip
    return str(out.decode())


def test_the_image_runs_as_an_unprivileged_named_user(docker_client: Any, vm_image: str) -> None:
    assert docker_client.images.get(vm_image).attrs["Config"]["User"] == "10001:10001"
    code = "import os, pwd; uid = os.getuid(); print(uid, os.getgid(), pwd.getpwuid(uid).pw_name)"
    who = run(docker_client, code, python=True)
    assert who.split() == ["10001", "10001", "clocklab"]


def test_the_image_adds_little_to_its_base(docker_client: Any, vm_image: str) -> None:
    image = docker_client.images.get(vm_image)
    base = docker_client.images.get(image.labels[BASE_LABEL])
    added = image.attrs["Size"] - base.attrs["Size"]
    assert added < MAX_ADDED_BYTES, f"the image adds {added / 1e6:.1f} MB to {base.tags}"
    assert image.attrs["Size"] < MAX_IMAGE_BYTES


def test_vm_node_help_works_on_a_read_only_root(docker_client: Any, vm_image: str) -> None:
    out = run(docker_client, "--help")
    assert "usage:" in out
    assert "--vm" in out


def test_the_image_precompiled_its_python_so_nothing_is_written(
    docker_client: Any, vm_image: str
) -> None:
    # A read-only root cannot cache bytecode: every module must come compiled.
    code = (
        "import importlib.util, os, sys, asyncio, orjson, structlog, vm_node.__main__\n"
        "print([name for name, m in list(sys.modules.items())\n"
        "       if (getattr(m, '__file__', None) or '').endswith('.py')\n"
        "       and not os.path.exists(importlib.util.cache_from_source(m.__file__))])"
    )
    assert run(docker_client, code, python=True).strip() == "[]"


def test_one_vm_writes_its_log_to_the_logs_bind_mount(
    docker_client: Any, vm_image: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o777)  # the VM runs as uid 10001
    settings = {"VM": 0, "VMS": 1, "RATE": 5, "DURATION": 2, "TIME_SCALE": 10, "RUN": "image"}
    run(
        docker_client,
        environment={f"CLOCKLAB_{k}": str(v) for k, v in settings.items()},
        volumes={str(logs): {"bind": "/logs", "mode": "rw"}},
    )
    events = [orjson.loads(line) for line in (logs / "vm0.jsonl").read_bytes().splitlines()]
    assert events[0]["event"] == "start"
    assert events[-1]["event"] == "stop"
    assert events[-1]["ticks"] == 10


def test_the_image_says_what_it_was_built_from(docker_client: Any, vm_image: str) -> None:
    labels = docker_client.images.get(vm_image).labels
    assert labels["clocklab.image"] == "vm"
    assert labels["org.opencontainers.image.title"] == "clocklab-vm"
    assert labels[SOURCE_LABEL] == source_digest(Path(__file__).resolve().parents[2])
