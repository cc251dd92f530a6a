"""The engine is chosen as the docker CLI chooses it, and CLIs are pinned to that choice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestrator.engine import DEFAULT_HOST, Endpoint, resolve_endpoint
from orchestrator.errors import ConfigError


def make_context(config_dir: Path, name: str, host: str) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    endpoints = {"docker": {"Host": host, "SkipTLSVerify": False}}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": endpoints}))


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    make_context(tmp_path, "remote", "tcp://remote:2375")
    make_context(tmp_path, "other", "ssh://other")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "other"}))
    return tmp_path


def test_the_context_flag_wins_over_everything(config_dir: Path) -> None:
    environ = {"DOCKER_HOST": "tcp://env:2375", "DOCKER_CONTEXT": "other"}
    endpoint = resolve_endpoint("remote", environ, config_dir)
    assert endpoint.host == "tcp://remote:2375" and endpoint.context == "remote"


def test_docker_host_wins_over_docker_context_and_the_current_context(config_dir: Path) -> None:
    environ = {"DOCKER_HOST": "tcp://env:2375", "DOCKER_CONTEXT": "remote"}
    assert resolve_endpoint(None, environ, config_dir) == Endpoint(
        "tcp://env:2375", chosen_by="DOCKER_HOST"
    )


def test_docker_context_wins_over_the_current_context(config_dir: Path) -> None:
    assert resolve_endpoint(None, {"DOCKER_CONTEXT": "remote"}, config_dir).context == "remote"


def test_the_current_context_of_config_json_comes_next(config_dir: Path) -> None:
    assert resolve_endpoint(None, {}, config_dir).host == "ssh://other"


def test_without_any_choice_it_is_the_default_socket(tmp_path: Path) -> None:
    assert resolve_endpoint(None, {}, tmp_path).host == DEFAULT_HOST
    assert resolve_endpoint("default", {}, tmp_path).host == DEFAULT_HOST


def test_an_unknown_context_is_a_config_error_naming_it(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no Docker context named 'nowhere'"):
        resolve_endpoint("nowhere", {}, config_dir)


def test_docker_clis_are_pinned_to_the_chosen_endpoint() -> None:
    environ = {"DOCKER_HOST": "tcp://env:2375", "DOCKER_CONTEXT": "x", "PATH": "/bin"}
    named = Endpoint("tcp://remote:2375", context="remote").cli_env(environ)
    assert named == {"DOCKER_CONTEXT": "remote", "PATH": "/bin"}
    by_host = Endpoint("unix:///run/d.sock").cli_env(environ)
    assert by_host == {"DOCKER_HOST": "unix:///run/d.sock", "PATH": "/bin"}
