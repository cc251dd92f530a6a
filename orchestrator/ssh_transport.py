"""The Docker SDK's transport over the `ssh` binary, with a close that survives its ssh.

With `use_ssh_client`, every connection runs `ssh HOST docker system dial-stdio`, and
closing it writes to that process before ending it. After a hijacked stream (`exec_run`,
which the network cuts' helpers use) the engine ends the stream and the ssh process may
be gone by then: the write raised BrokenPipeError after the command had run and its
output was read, and the caller took the exec as failed (docker/docker-py#3218). Here a
connection whose ssh has ended is closed without the write.
"""

from __future__ import annotations

import contextlib
from typing import Any

from docker.transport.sshconn import (
    SSHConnection,
    SSHConnectionPool,
    SSHHTTPAdapter,
    SSHSocket,
)

MOUNT = "http+docker://ssh"  # where the SDK's client mounts its ssh adapter


class _Socket(SSHSocket):  # type: ignore[misc]
    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            return  # ssh has ended: nothing to tell it
        with contextlib.suppress(BrokenPipeError):  # it ended meanwhile
            super().close()


class _Connection(SSHConnection):  # type: ignore[misc]
    def connect(self) -> None:
        sock = _Socket(self.ssh_host)
        sock.settimeout(self.timeout)
        sock.connect()
        self.sock = sock


class _Pool(SSHConnectionPool):  # type: ignore[misc]
    def _new_conn(self) -> _Connection:
        return _Connection(timeout=self.timeout, host=self.ssh_host)


class SshAdapter(SSHHTTPAdapter):  # type: ignore[misc]
    """Requests to `base_url` (ssh://[USER@]HOST[:PORT]), each over a new `ssh` process."""

    def __init__(self, base_url: str, timeout: int) -> None:
        super().__init__(base_url, timeout, shell_out=True)

    def get_connection(self, url: str, proxies: Any = None) -> _Pool:
        return _Pool(timeout=self.timeout, maxsize=self.max_pool_size, host=self.ssh_host)


def use_ssh_adapter(client: Any, base_url: str, timeout: int) -> None:
    """Have the SDK's `client` (made for `base_url`, over the `ssh` binary) send its requests
    through SshAdapter."""
    client.api.mount(MOUNT, SshAdapter(base_url, timeout))
