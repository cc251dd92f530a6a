"""A VM's configuration: read once, at the edge, from environment and flags.

Every setting has an environment variable (`CLOCKLAB_<NAME>`) and an equal
command-line flag (`--<name>`); a flag wins over the environment. Invalid
values raise SettingError naming the setting and the value.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgspec

from vm_node.conditions import LinkCondition
from vm_node.errors import ConditionError, SettingError
from vm_node.resume import HandedBack, Resume, ResumeSetting
from vm_node.vocabulary import CLOCK_LIMIT

if TYPE_CHECKING:
    import argparse

DEFAULT_BASE_PORT = 5000
# Real seconds a fleet gets to link up at the start: every VM starting and N(N-1) links
# forming take longer the larger the fleet, so beyond READY_FLEET VMs the wait grows.
READY_TIMEOUT, READY_TIMEOUT_PER_VM, READY_FLEET = 60.0, 0.5, 50


def fleet_ready_timeout(vms: int) -> float:
    """Real seconds a fleet of `vms` VMs waits at the start barrier, by default."""
    return READY_TIMEOUT + READY_TIMEOUT_PER_VM * max(0, vms - READY_FLEET)


class LogStream(StrEnum):
    """Where a VM's log lines go: the stream its backend collects."""

    FILE = "file"  # <log_dir>/vm<i>.jsonl (local and Compose backends)
    STDOUT = "stdout"  # (Swarm: docker service logs)
    # Each line to the file, then to stdout (Swarm with a log volume on each node:
    # the file keeps what the service logs had yet to carry when a node went down)
    FILE_AND_STDOUT = "file+stdout"


class PeerAddress(msgspec.Struct, frozen=True, gc=False):
    """Where to reach a peer: an explicit address, or none (resolve `vm<id>`)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class NodeConfig(msgspec.Struct, frozen=True):
    vm: int
    vms: int = 3
    rate: float = 1.0
    event_range: int = 10
    duration: float = 60.0
    time_scale: float = 1.0
    seed: int = 0
    run: str = "run"
    host: str = "0.0.0.0"
    port: int = 0  # 0: base_port + vm
    listen_fd: int | None = None  # a listening socket handed over by the backend: no bind
    base_port: int = DEFAULT_BASE_PORT
    peers: Mapping[int, PeerAddress] = msgspec.field(default_factory=dict)  # empty: by name
    # Where peers are at the start, as the orchestrator placed them: no name lookups while
    # a fleet starts; a link that has been up goes by name (a partition moves a VM).
    start_peers: Mapping[int, PeerAddress] = msgspec.field(default_factory=dict)
    log_dir: str = "logs"
    auth_key: str | None = None
    auth_key_file: str | None = None  # where auth_key came from (a mounted secret)
    start_at: float | None = None  # earliest shared start (wall clock)
    ready_timeout: float | None = None  # real seconds to wait for every peer; None: scaled
    bye_timeout: float = 2.0  # real seconds to wait for peers' `bye` at the end
    log_stream: LogStream = LogStream.FILE  # the one stream the backend collects
    links: tuple[LinkCondition, ...] = ()  # delay, loss, duplication on this VM's sends
    resume: HandedBack | None = None  # else read from the earlier incarnations' logs
    clock_offset: float = 0.0  # seconds added to every logged timestamp (a skewed host)
    realtime: bool = False  # tick at real-time priority (where the process may)

    @property
    def barrier_timeout(self) -> float:
        """Real seconds to wait at the start barrier for every peer."""
        return fleet_ready_timeout(self.vms) if self.ready_timeout is None else self.ready_timeout

    @property
    def listen_port(self) -> int:
        return self.port or self.base_port + self.vm

    @property
    def peer_ids(self) -> tuple[int, ...]:
        return tuple(j for j in range(self.vms) if j != self.vm)

    @property
    def tick_period(self) -> float:
        """Real seconds between ticks."""
        return 1.0 / (self.rate * self.time_scale)

    @property
    def total_ticks(self) -> int:
        return max(1, round(self.duration * self.rate))

    def to_log(self) -> dict[str, Any]:
        """The whole effective configuration, as the `start` line carries it."""
        d = msgspec.structs.asdict(self)  # the encoder writes the Structs within
        d["port"] = self.listen_port
        d["peers"] = {str(j): str(a) for j, a in self.peers.items()}
        d["start_peers"] = {str(j): str(a) for j, a in self.start_peers.items()}
        d["auth"] = self.auth_key is not None
        d["links"] = [c.to_json() for c in self.links]
        del d["auth_key"]  # never log the secret (auth_key_file names only where it is)
        del d["listen_fd"]  # a detail of this process: `port` says where it listens
        return d

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> NodeConfig:
        return cls.from_args([], environ)

    @classmethod
    def from_args(cls, argv: Sequence[str], environ: Mapping[str, str]) -> NodeConfig:
        flags = vars(build_parser().parse_args(argv)) if argv else {}
        values: dict[str, Any] = {}
        fields = _fields()
        for s in SETTINGS:
            raw = flags.get(s.name)
            if raw is None:
                raw = environ.get(s.env)
            if raw is None:
                if fields[s.name].required:
                    raise SettingError(s.name, None, f"required (set {s.env} or --{s.flag})")
                continue
            try:
                values[s.name] = s.parse(raw)
            except (ValueError, TypeError) as e:
                raise SettingError(s.name, raw, str(e) or "not a valid value") from None
        if "auth_key_file" in values:
            if "auth_key" in values:
                problem = "give auth_key or auth_key_file, not both"
                raise SettingError("auth_key_file", values["auth_key_file"], problem)
            values["auth_key"] = _read_key(values["auth_key_file"])
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        checks: list[tuple[str, object, bool, str]] = [
            ("vms", self.vms, 1 <= self.vms <= 1000, "must be between 1 and 1000"),
            ("vm", self.vm, 0 <= self.vm < self.vms, f"must be in 0..{self.vms - 1}"),
            ("rate", self.rate, self.rate > 0, "must be > 0 ticks per second"),
            ("event_range", self.event_range, self.event_range >= 1, "must be >= 1"),
            ("duration", self.duration, self.duration > 0, "must be > 0 seconds"),
            ("time_scale", self.time_scale, self.time_scale > 0, "must be > 0"),
            ("port", self.port, 0 <= self.port < 65536, "must be a TCP port"),
            ("listen_fd", self.listen_fd, (self.listen_fd or 0) >= 0, "must be a descriptor"),
            ("base_port", self.base_port, 0 < self.base_port < 65536, "must be a TCP port"),
            ("listen port", self.listen_port, self.listen_port < 65536, "base_port + vm > 65535"),
            ("seed", self.seed, 0 <= self.seed < CLOCK_LIMIT, "must be in [0, 2^53)"),
            ("run", self.run, 0 < len(self.run) <= 128, "must be 1-128 characters"),
            ("ready_timeout", self.ready_timeout, self.barrier_timeout > 0, "must be > 0"),
            ("bye_timeout", self.bye_timeout, self.bye_timeout >= 0, "must be >= 0"),
            ("clock_offset", self.clock_offset, abs(self.clock_offset) <= 3600, "within ±3600 s"),
            ("auth_key", "<hidden>", self.auth_key != "", "must not be empty"),
        ]
        for setting, value, ok, problem in checks:
            if not ok:
                raise SettingError(setting, value, problem)
        for condition in self.links:
            ids = {vm for link in condition.links or () for vm in link}
            if any(vm >= self.vms for vm in ids):
                raise SettingError("links", sorted(ids), f"VM ids must be in 0..{self.vms - 1}")
        for name, peers in (("peers", self.peers), ("start_peers", self.start_peers)):
            for j in peers:
                if not (0 <= j < self.vms) or j == self.vm:
                    raise SettingError(name, j, f"peer ids must be in 0..{self.vms - 1}, not self")
        if self.resume is not None and len(self.resume.resume.vector) != self.vms:
            vector = self.resume.resume.vector
            raise SettingError("resume", list(vector), f"the vector needs {self.vms} entries")


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1/true/yes/on or 0/false/no/off")


def _log_stream(raw: str) -> LogStream:
    try:
        return LogStream(raw)
    except ValueError:
        raise ValueError(f"must be one of {[s.value for s in LogStream]}") from None


def _read_key(path: str) -> str:
    """The HMAC key from a file (a Compose or Swarm secret); a trailing newline is not key."""
    try:
        with open(path, encoding="utf-8") as file:
            key = file.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise SettingError("auth_key_file", path, f"cannot read the key: {e}") from None
    if not key:
        raise SettingError("auth_key_file", path, "the file holds no key")
    return key


def _links(raw: str) -> tuple[LinkCondition, ...]:
    """A JSON list of link conditions (see vm_node.conditions)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(data, list):
        raise ValueError("must be a JSON list of conditions")
    try:
        return tuple(LinkCondition.from_json(item, f"[{i}]") for i, item in enumerate(data))
    except ConditionError as e:
        raise ValueError(str(e)) from None


def _resume(raw: str) -> HandedBack:
    """`{"incarnation": k, "lamport": L, "vector": [...], "start_at": t}` (Resume.to_json)."""
    try:
        setting = msgspec.json.decode(raw, type=ResumeSetting)
    except msgspec.DecodeError as e:  # not JSON, or not of that form
        raise ValueError(str(e)) from None
    if setting.incarnation < 1 or setting.lamport < 0 or min(setting.vector, default=0) < 0:
        raise ValueError("incarnation must be >= 1, clocks >= 0")
    resume = Resume(setting.lamport, setting.vector, setting.start_at)
    return HandedBack(setting.incarnation, resume)


def _peers(raw: str) -> dict[int, PeerAddress]:
    """`1=host:port,2=host:port` -> {1: PeerAddress, 2: PeerAddress}."""
    peers: dict[int, PeerAddress] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        ident, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not (sep and colon and host and ident.isdigit() and port.isdigit()):
            raise ValueError(f"expected id=host:port, got {item!r}")
        peers[int(ident)] = PeerAddress(host, int(port))
    return peers


class Setting(msgspec.Struct, frozen=True):
    """How one NodeConfig field is read from a string. Its default is the field's own."""

    name: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return "CLOCKLAB_" + self.name.upper()

    @property
    def flag(self) -> str:
        return self.name.replace("_", "-")


SETTINGS = (
    Setting("vm", int, "this VM's id, 0..vms-1"),
    Setting("vms", int, "number of VMs in the trial"),
    Setting("rate", _finite, "clock rate in ticks per simulated second"),
    Setting("event_range", int, "a tick on an empty inbox draws r in 1..event_range"),
    Setting("duration", _finite, "simulated seconds to run"),
    Setting("time_scale", _finite, "run k times faster: rates times k, durations over k"),
    Setting("seed", int, "seed of this VM's random choices"),
    Setting("run", str, "run id: frames from other runs are rejected"),
    Setting("host", str, "address to listen on"),
    Setting("port", int, "port to listen on; 0: base_port + vm"),
    Setting("listen_fd", int, "listen on this inherited socket, already bound, instead"),
    Setting("base_port", int, "peers not resolvable by name are at 127.0.0.1:base_port+id"),
    Setting("peers", _peers, "explicit peer list: 1=host:port,2=host:port"),
    Setting("start_peers", _peers, "where peers are at the start (same form); later by name"),
    Setting("log_dir", str, "directory for vm<i>.jsonl"),
    Setting("auth_key", str, "shared secret: frames without its HMAC are rejected"),
    Setting("auth_key_file", str, "read auth_key from this file (e.g. /run/secrets/...)"),
    Setting("start_at", _finite, "earliest shared start time, Unix seconds"),
    Setting(
        "ready_timeout",
        _finite,
        f"real seconds to wait for every peer (default {READY_TIMEOUT:g}, and "
        f"{READY_TIMEOUT_PER_VM:g} more for each VM beyond {READY_FLEET})",
    ),
    Setting("bye_timeout", _finite, "real seconds to wait for peers' bye"),
    Setting(
        "log_stream",
        _log_stream,
        "where the log goes: file (log_dir/vm<i>.jsonl), stdout, or file+stdout (both)",
    ),
    Setting("links", _links, "link conditions: a JSON list of delay/loss/duplicate windows"),
    Setting("clock_offset", _finite, "seconds added to every logged timestamp (clock skew)"),
    Setting("realtime", _flag, "once started, ask for real-time scheduling (needs CAP_SYS_NICE)"),
    Setting("resume", _resume, "this incarnation and its earlier one's last clocks, as JSON"),
)


def help_text(setting: Setting) -> str:
    """The setting's help, with the field's default where it has a value to show."""
    default = _fields()[setting.name].default
    if default is None or default is msgspec.NODEFAULT or default == ():  # nothing to show
        return setting.help
    if isinstance(default, bool):
        shown = str(default).lower()
    elif isinstance(default, float):
        shown = f"{default:g}"
    else:
        shown = str(default)
    return f"{setting.help} (default {shown})"


@functools.cache
def _fields() -> Mapping[str, msgspec.structs.FieldInfo]:
    """NodeConfig's fields by name, looked up once: msgspec evaluates the annotations anew
    on every lookup, and the sim backend configures three VMs a trial."""
    return {f.name: f for f in msgspec.structs.fields(NodeConfig)}


def build_parser() -> argparse.ArgumentParser:
    # Imported here: backends set the environment, so a VM they start never loads argparse.
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m vm_node",
        description="One clocklab VM. Every flag also reads CLOCKLAB_<NAME> from the environment.",
    )
    for s in SETTINGS:
        described = help_text(s)
        parser.add_argument(f"--{s.flag}", dest=s.name, default=None, metavar=s.env, help=described)
    return parser
