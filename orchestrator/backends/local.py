"""The local backend: each VM a child process on 127.0.0.1, at base_port + id."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from typing import IO, Any

from orchestrator.auth import KEY_FILE_ENV, TrialKey
from orchestrator.backends import last_words
from orchestrator.errors import TrialError
from orchestrator.node_clocks import ClockNode
from orchestrator.plan import TrialPlan
from vm_node.config import DEFAULT_BASE_PORT
from vm_node.receiver import listen_backlog
from vm_node.rundir import RunDir

STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL


def listening_block(
    count: int, start: int = DEFAULT_BASE_PORT, limit: int = 65000
) -> tuple[int, list[socket.socket]]:
    """`count` listening sockets on consecutive ports of 127.0.0.1, the first block from
    `start` whose ports are all free; returns its base port and the sockets.

    Bound here and handed to the VMs, a port cannot be taken by another process (another
    sweep's trial, a test) between our choosing it and a VM listening on it.
    """
    base = start
    while base + count <= limit:
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sockets.append(_listening(port, backlog=listen_backlog(count - 1)))
        except OSError:
            for sock in sockets:
                sock.close()
            base += len(sockets) + 1  # past the port that was taken
            continue
        return base, sockets
    raise TrialError(f"no {count} consecutive free ports between {start} and {limit}")


def free_port_block(count: int, start: int = DEFAULT_BASE_PORT, limit: int = 65000) -> int:
    """The first base port from `start` with `count` free ports after it, as of now."""
    base, sockets = listening_block(count, start, limit)
    for sock in sockets:
        sock.close()
    return base


def _listening(port: int, backlog: int) -> socket.socket:
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class LocalBackend:
    """Plain processes: kill is SIGKILL then a new process, pause is SIGSTOP/SIGCONT;
    no partitions (every VM shares the host's loopback). It carries out its faults itself."""

    name = "local"

    def __init__(
        self,
        plan: TrialPlan,
        run_dir: RunDir,
        base_port: int = DEFAULT_BASE_PORT,
        python: str = sys.executable,
    ) -> None:
        """The VMs listen on the first block of free ports from `base_port`, found at launch."""
        self.plan = plan
        self.run_dir = run_dir
        self.fault_parts: tuple[object, ...] = (self,)
        self._requested_port = base_port
        self._python = python
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._stderr: dict[int, IO[bytes]] = {}
        self._env: dict[int, dict[str, str]] = {}
        self._key: TrialKey | None = None
        self._listeners: dict[int, socket.socket] = {}  # each VM's, held for its restarts
        self.base_port: int | None = None

    def launch(self) -> None:
        plan, run_dir = self.plan, self.run_dir
        self.base_port, listeners = listening_block(plan.vms, self._requested_port)
        self._listeners = dict(enumerate(listeners))
        peers = {i: f"127.0.0.1:{self.base_port + i}" for i in range(plan.vms)}
        run_dir.output.mkdir(exist_ok=True)
        self._key = TrialKey.create() if plan.experiment.auth else None
        for vm in range(plan.vms):
            env = os.environ | plan.vm_settings(vm)
            env |= {
                "CLOCKLAB_HOST": "127.0.0.1",
                "CLOCKLAB_BASE_PORT": str(self.base_port),
                "CLOCKLAB_PEERS": ",".join(f"{j}={a}" for j, a in peers.items() if j != vm),
                "CLOCKLAB_LOG_DIR": str(run_dir.logs),
                "CLOCKLAB_LOG_STREAM": "file",  # the file is the log; no pipe to fill
                "CLOCKLAB_LISTEN_FD": str(self._listeners[vm].fileno()),
            }
            if self._key is not None:
                env[KEY_FILE_ENV] = str(self._key.path)
            self._env[vm] = env
            self._stderr[vm] = (run_dir.output / f"vm{vm}.log").open("ab")
            self._spawn(vm)

    def _spawn(self, vm: int) -> None:
        self._procs[vm] = subprocess.Popen(
            [self._python, "-m", "vm_node"],
            env=self._env[vm],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr[vm],
            start_new_session=True,  # Ctrl-C reaches us; we stop the VMs in order
            pass_fds=(self._listeners[vm].fileno(),),
        )

    def kill(self, vm: int) -> None:
        self._procs[vm].kill()
        self._procs[vm].wait()

    def restart(self, vm: int) -> None:
        """A new process on the same port and log directory: the VM's next incarnation."""
        self._spawn(vm)

    def pause(self, vm: int) -> None:
        self._procs[vm].send_signal(signal.SIGSTOP)

    def unpause(self, vm: int) -> None:
        self._procs[vm].send_signal(signal.SIGCONT)

    def exit_codes(self) -> dict[int, int | None]:
        return {vm: proc.poll() for vm, proc in self._procs.items()}

    def diagnose(self, vm: int) -> str:
        return last_words(self.run_dir.output, vm)

    def teardown(self) -> None:
        """SIGTERM every VM still running (they log `stop`), SIGKILL what lingers."""
        running = [p for p in self._procs.values() if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGCONT)  # a paused VM must be able to stop
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in self._stderr.values():
            stream.close()
        self._stderr.clear()
        for sock in self._listeners.values():
            sock.close()
        self._listeners.clear()
        if self._key is not None:
            self._key.remove()

    def clock_nodes(self) -> list[ClockNode]:
        """This machine: read the same way as a remote node, by a Python of its own."""
        return [ClockNode(platform.node(), tuple(range(self.plan.vms)), (sys.executable,))]

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "base_port": self.base_port,
            "python": sys.version.split()[0],
            "host": platform.node(),
            "pids": {vm: p.pid for vm, p in self._procs.items()},
            "auth": self._key is not None,
        }
