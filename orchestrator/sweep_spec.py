"""The `sweep:` section of an experiment file: a grid of cells, K trials each.

    sweep:
      rate_range: [[1, 6], [1, 3], [4, 5]]   # each a [min, max] to draw rates from
      event_range: [5, 10, 20]
      vms: [3, 5]
      trials: 3                              # per cell
      concurrency: 4                         # trials at once (optional)

Any axis left out keeps the experiment's own value. Every cell is the
experiment with that cell's values in place, under a name of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

import msgspec
import yaml

from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment, load_experiment

MAX_CELLS = 10_000
KNOWN = ("rate_range", "event_range", "vms", "trials", "concurrency")


class SweepSpec(msgspec.Struct, frozen=True):
    rate_ranges: tuple[tuple[float, float], ...] = ()  # () keeps the experiment's
    event_ranges: tuple[int, ...] = ()
    vms: tuple[int, ...] = ()
    trials: int | None = None  # per cell; None keeps the experiment's
    concurrency: int | None = None

    def cells(self, base: Experiment) -> list[Experiment]:
        """One experiment per grid point, validated, named after its values."""
        ranges = self.rate_ranges or (base.rate_range or _listed_range(base),)
        grid = product(ranges, self.event_ranges or (base.event_range,), self.vms or (base.vms,))
        cells = []
        for (low, high), event_range, vms in grid:
            cell = msgspec.structs.replace(
                base,
                name=cell_name(base.name, (low, high), event_range, vms),
                rate_range=(low, high),
                rates=None,
                event_range=event_range,
                vms=vms,
                trials=self.trials or base.trials,
                description=f"{base.name}: rates {low:g}-{high:g}, event range {event_range}, "
                f"{vms} VMs",
            )
            cell.validate(f"sweep cell {cell.name}")
            cells.append(cell)
        return cells


def cell_name(base: str, rate_range: tuple[float, float], event_range: int, vms: int) -> str:
    """`<base>-r1-6-e10-n3`: readable, and usable as a directory and a Compose project."""
    low, high = (f"{x:g}".replace(".", "p") for x in rate_range)
    suffix = f"-r{low}-{high}-e{event_range}-n{vms}"
    return base[: 40 - len(suffix)] + suffix


def load_sweep(name_or_path: str) -> tuple[Experiment, SweepSpec]:
    """An experiment file and its `sweep:` section (an empty grid when it has none)."""
    experiment, path = load_experiment(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))  # load_experiment read it already
    section = data.get("sweep") if isinstance(data, Mapping) else None
    return experiment, SweepSpec() if section is None else parse_sweep(section, str(path))


def parse_sweep(data: object, source: str) -> SweepSpec:
    """The `sweep:` mapping, each field checked and named when wrong."""
    if not isinstance(data, Mapping):
        raise ConfigError("sweep", f"must be a mapping of {', '.join(KNOWN)}", source)
    unknown = sorted(set(data) - set(KNOWN))
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]}", f"unknown (known: {', '.join(KNOWN)})", source)
    spec = SweepSpec(
        rate_ranges=tuple(
            _rate_range(f"sweep.rate_range[{i}]", v, source)
            for i, v in enumerate(_list("rate_range", data, source))
        ),
        event_ranges=tuple(
            _positive_int(f"sweep.event_range[{i}]", v, source)
            for i, v in enumerate(_list("event_range", data, source))
        ),
        vms=tuple(
            _positive_int(f"sweep.vms[{i}]", v, source)
            for i, v in enumerate(_list("vms", data, source))
        ),
        trials=_optional_int("trials", data, source),
        concurrency=_optional_int("concurrency", data, source),
    )
    size = max(1, len(spec.rate_ranges)) * max(1, len(spec.event_ranges)) * max(1, len(spec.vms))
    if size > MAX_CELLS:
        raise ConfigError("sweep", f"{size} cells is more than {MAX_CELLS}", source)
    return spec


def _listed_range(base: Experiment) -> tuple[float, float]:
    rates = base.rates or (1.0,)
    return (min(rates), max(rates))


def _list(field: str, data: Mapping[str, object], source: str) -> list[object]:
    value = data.get(field, [])
    if not isinstance(value, list):
        raise ConfigError(f"sweep.{field}", f"must be a list, got {value!r}", source)
    return value


def _rate_range(field: str, value: object, source: str) -> tuple[float, float]:
    if isinstance(value, list) and len(value) == 2:
        low, high = value
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        if numbers and 0 < float(low) <= float(high):
            return (float(low), float(high))
    raise ConfigError(field, f"must be [min, max] with 0 < min <= max, got {value!r}", source)


def _positive_int(field: str, value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, f"must be an integer >= 1, got {value!r}", source)
    return value


def _optional_int(field: str, data: Mapping[str, object], source: str) -> int | None:
    value = data.get(field)
    return None if value is None else _positive_int(f"sweep.{field}", value, source)
