"""The engine is chosen as the docker CLI chooses it, and CLIs are pinned to that choice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestrator.engine import DEFAULT_HOST, Endpoint, Tls, client_options, resolve_endpoint
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


def add_tls(config_dir: Path, name: str, files: tuple[str, ...] = ("ca", "cert", "key")) -> Path:
    """TLS material where `docker context create --docker ca=...,cert=...,key=...` puts it."""
    folder = config_dir / "contexts" / "tls" / hashlib.sha256(name.encode()).hexdigest() / "docker"
    folder.mkdir(parents=True)
    for file in files:
        (folder / f"{file}.pem").write_text(f"not a real {file}\n")
    return folder


def test_a_tls_context_brings_its_certificates(tmp_path: Path) -> None:
    make_context(tmp_path, "secure", "tcp://secure:2376")
    folder = add_tls(tmp_path, "secure")
    endpoint = resolve_endpoint("secure", {}, tmp_path)
    assert endpoint.tls == Tls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", True)
    options = client_options(endpoint)
    assert options["base_url"] == "tcp://secure:2376"
    assert options["tls"].cert == (str(folder / "cert.pem"), str(folder / "key.pem"))
    assert options["tls"].ca_cert == str(folder / "ca.pem") and options["tls"].verify is True


def test_a_tls_context_that_skips_verification_keeps_its_client_certificate(
    tmp_path: Path,
) -> None:
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"lax").hexdigest()
    meta.mkdir(parents=True)
    endpoints = {"docker": {"Host": "tcp://lax:2376", "SkipTLSVerify": True}}
    (meta / "meta.json").write_text(json.dumps({"Name": "lax", "Endpoints": endpoints}))
    folder = add_tls(tmp_path, "lax", ("cert", "key"))
    options = client_options(resolve_endpoint("lax", {}, tmp_path))
    assert options["tls"].cert == (str(folder / "cert.pem"), str(folder / "key.pem"))
    assert options["tls"].verify is False


def test_the_client_of_a_tls_context_speaks_https_with_its_certificate(tmp_path: Path) -> None:
    import docker

    make_context(tmp_path, "secure", "tcp://secure:2376")
    folder = add_tls(tmp_path, "secure")
    options = client_options(resolve_endpoint("secure", {}, tmp_path))
    client = docker.DockerClient(version="1.41", **options)  # a fixed version: no request
    assert client.api.base_url == "https://secure:2376"
    assert client.api.cert == (str(folder / "cert.pem"), str(folder / "key.pem"))
    assert client.api.verify == str(folder / "ca.pem")


def test_a_context_without_tls_material_is_plain(config_dir: Path) -> None:
    endpoint = resolve_endpoint("remote", {}, config_dir)
    assert endpoint.tls is None and client_options(endpoint)["tls"] is False


def test_docker_tls_verify_takes_the_material_of_docker_cert_path(tmp_path: Path) -> None:
    for file in ("ca", "cert", "key"):
        (tmp_path / f"{file}.pem").write_text("x")
    environ = {
        "DOCKER_HOST": "tcp://env:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tmp_path),
    }
    endpoint = resolve_endpoint(None, environ, tmp_path)
    assert endpoint.tls == Tls(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")


def test_an_ssh_endpoint_makes_a_client_that_shells_out_to_ssh(config_dir: Path) -> None:
    import docker
    from docker.transport.sshconn import SSHHTTPAdapter

    endpoint = resolve_endpoint("other", {}, config_dir)
    assert client_options(endpoint) == {"base_url": "ssh://other", "use_ssh_client": True}
    ssh = Endpoint("ssh://root@node2:2222")
    client = docker.DockerClient(version="1.41", **client_options(ssh))  # no request yet
    adapter = client.api.get_adapter("http+docker://ssh/v1.41/info")
    assert isinstance(adapter, SSHHTTPAdapter)
    assert adapter.ssh_client is None  # no paramiko session: the `ssh` binary is run instead
    assert adapter.ssh_host == "root@node2:2222"
