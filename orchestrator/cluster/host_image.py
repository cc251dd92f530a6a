"""The host image: built by scripts/host-image.sh, rebuilt only when that recipe changes.

The script labels the image with its own sha256 (`clocklab.recipe`); an image
whose label differs from the script's digest now is stale.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.cluster.errors import ClusterError

RECIPE = Path(__file__).resolve().parents[2] / "scripts" / "host-image.sh"
RECIPE_LABEL = "clocklab.recipe"
BUILD_TIMEOUT = 600.0  # seconds: mmdebstrap fetches ~150 packages

Progress = Callable[[str], None]


def recipe_digest(recipe: Path = RECIPE) -> str:
    return hashlib.sha256(recipe.read_bytes()).hexdigest()


def ensure_host_image(
    client: Any, tag: str, say: Progress, recipe: Path = RECIPE, force: bool = False
) -> str:
    """The id of `tag`, built first when missing or built from another recipe."""
    labels = _labels(client, tag)
    if not recipe.exists():
        if labels is None:
            raise ClusterError(
                f"the host image {tag} is missing and {recipe} is not here to build it: "
                "run `clocklab cluster up` from a clocklab checkout"
            )
        return _image_id(client, tag)
    if labels is not None and labels.get(RECIPE_LABEL) == recipe_digest(recipe) and not force:
        return _image_id(client, tag)
    say(f"building the host image {tag} with {recipe.name} (about a minute)")
    _build(tag, say, recipe, force)
    labels = _labels(client, tag)
    if labels is None or labels.get(RECIPE_LABEL) != recipe_digest(recipe):
        raise ClusterError(f"{recipe} ran but {tag} does not carry its recipe's digest")
    return _image_id(client, tag)


def _build(tag: str, say: Progress, recipe: Path, force: bool) -> None:
    command = [str(recipe), *(["--force"] if force else [])]
    try:
        result = subprocess.run(
            command,
            env={**os.environ, "CLOCKLAB_HOST_IMAGE": tag},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"{recipe.name} did not finish in {BUILD_TIMEOUT:g} s") from e
    for line in result.stdout.splitlines():
        say(line)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-6:])
        raise ClusterError(f"{recipe.name} failed (exit code {result.returncode}):\n{tail}")


def _labels(client: Any, tag: str) -> dict[str, str] | None:
    import docker.errors

    try:
        return dict(client.images.get(tag).labels or {})
    except docker.errors.ImageNotFound:
        return None


def _image_id(client: Any, tag: str) -> str:
    return str(client.images.get(tag).id)
