"""The SDK's ssh transport, against an `ssh` of the test's own on PATH that is an engine: it
answers one request, as `ssh HOST docker system dial-stdio` relays one, and ends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.engine import Endpoint, client_for

# Reads one request; answers /version, or any other as an exec's hijacked stream whose one
# stdout frame is b"hello\n"; then ends, as ssh does when the engine ends the stream.
ENGINE = """
import json, struct, sys
request, body = sys.stdin.buffer, sys.stdout.buffer
first, length = request.readline(), 0
while (line := request.readline()) not in (b"\\r\\n", b""):
    if line.lower().startswith(b"content-length:"):
        length = int(line.split(b":")[1])
request.read(length)
if b"/version" in first:
    answer = json.dumps({"ApiVersion": "1.41", "Version": "20.10.24"}).encode()
    head = f"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
    body.write(f"{head}Content-Length: {len(answer)}\\r\\n\\r\\n".encode() + answer)
else:
    body.write(b"HTTP/1.1 101 UPGRADED\\r\\nContent-Type: application/vnd.docker.raw-stream"
               b"\\r\\nConnection: Upgrade\\r\\nUpgrade: tcp\\r\\n\\r\\n")
    body.write(struct.pack(">BxxxL", 1, 6) + b"hello\\n")
body.flush()
"""


@pytest.fixture
def ssh_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh = tmp_path / "ssh"
    ssh.write_text(f"#!{sys.executable}\n{ENGINE}")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path(sys.executable).parent}:/usr/bin:/bin")


@pytest.mark.usefixtures("ssh_engine")
def test_an_exec_over_ssh_returns_its_output_though_ssh_ends_with_the_stream() -> None:
    client = client_for(Endpoint("ssh://root@machine"), timeout=10)
    for _ in range(5):  # the stream's end and ssh's are one moment: more than one chance
        assert client.api.exec_start("e1") == b"hello\n"
