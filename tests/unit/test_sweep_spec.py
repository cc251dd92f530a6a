"""The `sweep:` section: parsing, validation that names the field, and the grid of cells."""

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment
from orchestrator.sweep_spec import SweepSpec, cell_name, load_sweep, parse_sweep

BASE = Experiment(name="grid", rate_range=(1, 6), event_range=10, trials=5, time_scale=100)


def test_the_grid_is_every_combination_named_after_its_values() -> None:
    spec = parse_sweep(
        {"rate_range": [[1, 6], [4, 5]], "event_range": [5, 10, 20], "vms": [3], "trials": 2},
        "test",
    )
    cells = spec.cells(BASE)
    assert len(cells) == 6
    assert cells[0].name == "grid-r1-6-e5-n3"
    assert {(c.rate_range, c.event_range, c.vms, c.trials) for c in cells} == {
        (r, e, 3, 2) for r in ((1.0, 6.0), (4.0, 5.0)) for e in (5, 10, 20)
    }
    assert all(c.time_scale == 100 for c in cells)  # what the grid leaves out stays


def test_an_axis_left_out_keeps_the_experiments_value() -> None:
    (cell,) = SweepSpec(event_ranges=(7,)).cells(BASE)
    assert (cell.rate_range, cell.event_range, cell.vms, cell.trials) == ((1, 6), 7, 3, 5)


def test_cell_names_are_short_and_safe_for_directories_and_projects() -> None:
    assert cell_name("x", (1.5, 2.25), 10, 3) == "x-r1p5-2p25-e10-n3"
    long = cell_name("a" * 40, (1, 6), 10, 3)
    assert len(long) == 40 and long.endswith("-r1-6-e10-n3")


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ([1, 2], "sweep"),
        ({"rate": [1]}, "sweep.rate"),
        ({"rate_range": [6, 1]}, "sweep.rate_range[0]"),
        ({"rate_range": [[6, 1]]}, "sweep.rate_range[0]"),
        ({"rate_range": [[0, 1]]}, "sweep.rate_range[0]"),
        ({"event_range": [5, 0]}, "sweep.event_range[1]"),
        ({"event_range": 5}, "sweep.event_range"),
        ({"vms": [True]}, "sweep.vms[0]"),
        ({"trials": 0}, "sweep.trials"),
        ({"concurrency": "many"}, "sweep.concurrency"),
    ],
)
def test_a_bad_sweep_section_names_the_field(section: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sweep(section, "test.yaml")
    assert caught.value.field == field


def test_a_cell_the_experiment_rules_reject_is_refused() -> None:
    with pytest.raises(ConfigError, match="vms"):
        SweepSpec(vms=(500,)).cells(BASE)


def test_an_experiment_file_carries_its_sweep(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nsweep:\n  event_range: [3, 30]\n  trials: 1\n")
    experiment, spec = load_sweep(str(path))
    assert experiment.name == "s"
    assert spec == SweepSpec(event_ranges=(3, 30), trials=1)


def test_the_shipped_phase_sweep_has_a_hundred_cells() -> None:
    base, spec = load_sweep("phase")
    assert len(spec.cells(base)) == 100
