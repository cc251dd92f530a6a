"""The wheels the VM image installs from: clocklab's own and its dependencies, built or
fetched on the host for the base image's Python, so the build needs no network."""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import CommandError, ImageError
from orchestrator.image.base import BasePython
from orchestrator.image.progress import Progress
from orchestrator.subprocesses import run_command

WHEEL_EPOCH = "315532800"  # 1980-01-01: same source, same wheel, cached layers
PIP_TIMEOUT = 600.0
_PROJECT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in")
_DOC_FILES = ("README", "LICENSE")


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
            stale.unlink(missing_ok=True)  # another build may have removed it meanwhile
        say(f"fetching wheels for Python {python.version} into {target.relative_to(root)}")
        download = ["download", "--dest", str(target), "--find-links", str(target)]
        download += [*python.pip_target_args(), str(app), "pip"]
        if not _pip([*download, "--no-index"]):
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
    if not _pip([*wheel, "--no-index", str(src)], env=env):
        requires = tomllib.loads((root / "pyproject.toml").read_text())["build-system"]["requires"]
        _pip_or_raise(
            ["download", "--dest", str(build_cache), *requires], "fetching build requirements"
        )
        _pip_or_raise([*wheel, "--no-index", str(src)], "building the clocklab wheel", env=env)
    (built,) = (tmp / "out").glob("clocklab-*.whl")
    return built


def _copy_package(src: Path, dest: Path) -> None:
    for path in src.rglob("*"):
        if path.is_file() and is_source(path):
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def _pip(args: list[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether pip succeeded (a first, offline attempt may fail)."""
    try:
        _pip_or_raise(args, "pip", env)
    except ImageError:
        return False
    return True


def _pip_or_raise(args: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    try:
        run_command(command, PIP_TIMEOUT, env=env)
    except CommandError as e:
        tail = "\n".join(e.stderr.strip().splitlines()[-8:])
        raise ImageError(f"{what} failed: pip {args[0]} exited {e.returncode}:\n{tail}") from None


def is_source(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
