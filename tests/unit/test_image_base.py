"""Choosing the VM image's base without a registry: a local base made before it carried
iptables (which partitions run beside the VMs) is built again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from orchestrator.image import base
from orchestrator.image.base import IPTABLES_LABEL, LOCAL_BASE, choose_base


class Offline:
    """An engine with no registry, holding the images given, by reference -> labels."""

    def __init__(self, images: dict[str, dict[str, str]]) -> None:
        held = {ref: type("Image", (), {"labels": labels})() for ref, labels in images.items()}

        class Images:
            def get(self, ref: str) -> Any:
                if ref not in held:
                    raise docker.errors.ImageNotFound(ref)
                return held[ref]

        class Api:
            def pull(self, *args: Any, **kwargs: Any) -> Any:
                raise docker.errors.APIError("no such host")

        self.images, self.api = Images(), Api()


@pytest.mark.parametrize(
    ("images", "built"),
    [
        ({}, [False]),  # none: built
        ({LOCAL_BASE: {}}, [True]),  # one without iptables: built again
        ({LOCAL_BASE: {IPTABLES_LABEL: "yes"}}, []),  # one with it: used as it is
    ],
)
def test_the_local_base_is_built_where_missing_or_without_iptables(
    images: dict[str, dict[str, str]],
    built: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    forced: list[bool] = []
    monkeypatch.setattr(base, "_build_local_base", lambda root, say, force: forced.append(force))
    assert choose_base(Offline(images), None, tmp_path, lambda line: None) == LOCAL_BASE
    assert forced == built
