"""The names of everything a simulated cluster is made of, in one place.

A cluster `name` (default clocklab-cluster) has hosts host0..host{N-1}: each is
the container `clocklab-hostN` (hostname hostN, cgroup parent /clocklab-hostN)
with a volume for its engine's data, and its engine's socket in
`<sockets>/hostN/docker.sock` on this machine. Everything is labelled
`clocklab.cluster=<name>`, so that `down` finds it and nothing else, and with the
`clocklab.session` of the command that made it (engine.py), so that a test
session's leak check sees what its clusters left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.engine import DEFAULT_HOST, LABEL_SESSION
from orchestrator.errors import ConfigError

LABEL_CLUSTER = "clocklab.cluster"
LABEL_HOST = "clocklab.cluster.host"
LABEL_ENGINE = "clocklab.cluster.engine"  # on an inner engine: where this machine's engine is
DEFAULT_NAME = "clocklab-cluster"
DEFAULT_SOCKETS = Path("/run/clocklab-cluster")
HOST_IMAGE = "clocklab-host:bookworm"
INNER_SOCKET_DIR = "/run/outer"  # where a host sees its folder of `sockets`
MAX_HOSTS = 16
# A host's /run is a tmpfs, as a real host's is: empty at every start, so an engine
# started after a crash finds no pid file or state of the engine before it, and that
# state never lies on the container's own root. On fuse-overlayfs, removing that state
# at start leaves whiteout markers under which the new engine's containerd folder is
# "not a directory", and the first boot after a crash fails.
RUN_TMPFS = {"/run": "exec,mode=755"}


@dataclass(frozen=True, slots=True)
class Host:
    """One simulated host: everything named after its index."""

    index: int
    cluster: str
    sockets: Path
    session: str = ""  # the session that made it ("" when it is only looked up)

    @property
    def hostname(self) -> str:
        return f"host{self.index}"

    @property
    def container(self) -> str:
        return f"clocklab-{self.hostname}"

    @property
    def volume(self) -> str:
        return f"{self.container}-engine"

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.container}"

    @property
    def context(self) -> str:
        return f"{self.cluster}-{self.hostname}"

    @property
    def socket_dir(self) -> Path:
        return self.sockets / self.hostname

    @property
    def socket(self) -> Path:
        return self.socket_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        """DOCKER_HOST for this host's engine."""
        return f"unix://{self.socket}"

    @property
    def labels(self) -> dict[str, str]:
        session = {LABEL_SESSION: self.session} if self.session else {}
        return {LABEL_CLUSTER: self.cluster, LABEL_HOST: self.hostname} | session

    def command(self, outer_engine: str, bare: bool = False) -> list[str]:
        """What the host runs: its ssh server (host keys made at its first start), then its
        engine, `bare` (dockerd_command) or not."""
        start_sshd = "ssh-keygen -A >/dev/null && mkdir -p /run/sshd && /usr/sbin/sshd"
        engine = self.bare_dockerd_command() if bare else self.dockerd_command(outer_engine)
        return ["sh", "-c", f'{start_sshd} && exec "$@"', self.hostname, *engine]

    def bare_dockerd_command(self) -> list[str]:
        """The engine of a bare host: no label says it is simulated, so that it is joined
        and used as a real machine is."""
        return [
            "dockerd",
            f"--cgroup-parent={self.cgroup_parent}",
            "-H",
            "unix:///var/run/docker.sock",
            "-H",
            f"unix://{INNER_SOCKET_DIR}/docker.sock",
        ]

    def dockerd_command(self, outer_engine: str) -> list[str]:
        """The host's engine, its own cgroup parent, two sockets.

        Its storage driver is dockerd's choice: overlay2 where the engine volume's
        filesystem carries it, since vfs copies the whole image before a container runs;
        vfs where it does not (vfs nests anywhere).

        Its labels say which cluster and host it is, and where `outer_engine`
        (this machine's, which runs the host) is: host faults need it.
        """
        return [
            "dockerd",
            f"--cgroup-parent={self.cgroup_parent}",
            f"--label={LABEL_CLUSTER}={self.cluster}",
            f"--label={LABEL_HOST}={self.hostname}",
            f"--label={LABEL_ENGINE}={outer_engine}",
            "-H",
            "unix:///var/run/docker.sock",
            "-H",
            f"unix://{INNER_SOCKET_DIR}/docker.sock",
        ]


@dataclass(frozen=True, slots=True)
class Layout:
    """A cluster of `hosts` hosts named `name`, its sockets under `sockets`, run by the
    engine at `engine` (this machine's, as DOCKER_HOST would name it)."""

    hosts: int = 3
    name: str = DEFAULT_NAME
    sockets: Path = DEFAULT_SOCKETS
    host_image: str = HOST_IMAGE
    engine: str = DEFAULT_HOST
    session: str = ""
    bare: bool = False  # hosts only, as bare machines: `clocklab cluster join` makes the rest

    def __post_init__(self) -> None:
        if not 1 <= self.hosts <= MAX_HOSTS:
            raise ConfigError("hosts", f"must be 1..{MAX_HOSTS}, got {self.hosts}")

    @property
    def network(self) -> str:
        return self.name

    @property
    def manager_context(self) -> str:
        return self.name

    @property
    def labels(self) -> dict[str, str]:
        session = {LABEL_SESSION: self.session} if self.session else {}
        return {LABEL_CLUSTER: self.name} | session

    def host(self, index: int) -> Host:
        return Host(index, self.name, self.sockets, self.session)

    def all_hosts(self) -> list[Host]:
        return [self.host(i) for i in range(self.hosts)]

    @property
    def manager(self) -> Host:
        return self.host(0)
