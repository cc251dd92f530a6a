"""A simulated trial described in one value, and written as a run directory.

Tests and the benchmark use it; `--backend sim` builds its Simulation from a
trial's plan instead (orchestrator/backends/sim.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec

from vm_node.conditions import LinkCondition
from vm_node.config import NodeConfig
from vm_node.rundir import Manifest, Outcome, RunDir
from vm_node.sim.faults import Kill
from vm_node.sim.logs import simulate
from vm_node.sim.network import Wire
from vm_node.sim.simulation import OpenLog, Simulation


class SyntheticRun(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate; `rates` are ticks per simulated second, one per VM."""

    rates: tuple[float, ...]
    duration: float = 60.0
    time_scale: float = 1.0
    event_range: int = 10
    seed: int = 0
    delay: float = 0.002  # wall seconds a message spends on the wire
    failure_rate: float = 0.0  # share of messages whose link refuses them
    loss_rate: float = 0.0  # share a loss condition drops (a `fault` line, no delivery)
    duplicate_rate: float = 0.0  # share a duplicate condition sends twice
    bad_frame_rate: float = 0.0  # chance per tick that a peer sends a garbled line
    kill: Kill | None = None
    clock_offsets: tuple[float, ...] = ()  # seconds each VM's clock is ahead (`skew:`), or none
    experiment: str = "synthetic"
    trial: int = 1
    start_at: float = 1_700_000_000.0

    def __post_init__(self) -> None:
        """The network's own settings; each VM's are checked as a real VM checks them."""
        if not self.rates:
            raise ValueError("rates: give one rate per VM")
        if self.clock_offsets and len(self.clock_offsets) != len(self.rates):
            raise ValueError(
                f"clock_offsets: {len(self.clock_offsets)} given for {len(self.rates)} VMs; "
                "give one per VM, or none"
            )
        if self.delay < 0:
            raise ValueError(f"delay={self.delay!r}: must be >= 0 seconds")
        for name in ("failure_rate", "loss_rate", "duplicate_rate", "bad_frame_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be in [0, 1]")
        for config in self.configs():
            config.validate()
        if self.kill is not None:
            kill = self.kill
            if not 0 <= kill.vm < len(self.rates):
                raise ValueError(f"kill.vm={kill.vm!r}: there are {len(self.rates)} VMs")
            if not 0 <= kill.at <= self.duration:
                raise ValueError(f"kill.at={kill.at!r}: must be in [0, duration={self.duration}]")
            if kill.down_for is not None and kill.down_for <= 0:
                raise ValueError(f"kill.down_for={kill.down_for!r}: must be > 0 seconds")

    @classmethod
    def for_lines(cls, lines: int, rates: tuple[float, ...] = (1.0, 3.0, 6.0)) -> SyntheticRun:
        """A run whose logs hold about `lines` lines in all."""
        return cls(rates=rates, duration=lines / sum(rates), time_scale=1000.0)

    @property
    def run_id(self) -> str:
        return f"{self.experiment}-trial-{self.trial}-seed-{self.seed}"

    @property
    def vm_seeds(self) -> tuple[int, ...]:
        return tuple(
            random.Random(f"{self.seed}:vm{i}").getrandbits(52) for i in range(len(self.rates))
        )

    def configs(self) -> list[NodeConfig]:
        """Each VM's configuration, as a real VM of this trial would be given it."""
        links = tuple(
            LinkCondition(kind, 0.0, None, None, probability=p)
            for kind, p in (("loss", self.loss_rate), ("duplicate", self.duplicate_rate))
            if p
        )
        offsets = self.clock_offsets or (0.0,) * len(self.rates)
        return [
            NodeConfig(
                vm=i,
                vms=len(self.rates),
                rate=rate,
                event_range=self.event_range,
                duration=self.duration,
                time_scale=self.time_scale,
                seed=seed,
                run=self.run_id,
                links=links,
                clock_offset=offset,
            )
            for i, (rate, seed, offset) in enumerate(
                zip(self.rates, self.vm_seeds, offsets, strict=True)
            )
        ]

    def simulation(self, open_log: OpenLog) -> Simulation:
        wire = Wire(self.delay, self.failure_rate, self.bad_frame_rate)
        faults = () if self.kill is None else (self.kill,)
        return Simulation(self.configs(), self.start_at, open_log, self.seed, wire, faults)


def write_run(spec: SyntheticRun, runs_root: Path) -> Path:
    """Simulate `spec` and write `runs_root/<experiment>/trial-<n>/`; return that directory."""
    run_dir = RunDir(runs_root / spec.experiment / f"trial-{spec.trial}")
    simulate(spec.simulation, run_dir)
    run_dir.write_manifest(
        Manifest(
            experiment=spec.experiment,
            trial=spec.trial,
            run=spec.run_id,
            seed=spec.seed,
            rates=spec.rates,
            vm_seeds=spec.vm_seeds,
            vms=len(spec.rates),
            duration=spec.duration,
            time_scale=spec.time_scale,
            event_range=spec.event_range,
            backend="synthetic",
            outcome=Outcome.COMPLETED,
            started_at=spec.start_at,
        )
    )
    return run_dir.path
