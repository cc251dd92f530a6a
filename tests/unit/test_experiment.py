from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment, load_experiment
from orchestrator.plan import draw_rates, plan_trial
from vm_node.rundir import RunDir


def test_the_shipped_experiments_load() -> None:
    original, _ = load_experiment("original")
    variation, _ = load_experiment("variation")
    assert (original.vms, original.rate_range, original.event_range) == (3, (1, 6), 10)
    assert (original.duration, original.trials) == (60, 5)
    assert (variation.rate_range, variation.event_range) == ((4, 5), 5)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- just\n- a list\n", "(file)"),
        ("name: x\nvms: [3\n", "(file)"),
        ("vms: 3\n", "name"),
        ("name: Bad.Name\n", "name"),
        ("name: x\nvms: 0\n", "vms"),
        ("name: x\nvms: three\n", "vms"),
        ("name: x\nvms: true\n", "vms"),
        ("name: x\nrate_range: [6, 1]\n", "rate_range"),
        ("name: x\nrate_range: [0, 1]\n", "rate_range"),
        ("name: x\nrate_range: 4\n", "rate_range"),
        ("name: x\nrates: [1, 2]\n", "rates"),
        ("name: x\nrates: [1, 2, 3]\nrate_range: [1, 2]\n", "rates"),
        ("name: x\nevent_range: 0\n", "event_range"),
        ("name: x\nduration: -5\n", "duration"),
        ("name: x\nduration: .nan\n", "duration"),
        ("name: x\ntime_scale: 0\n", "time_scale"),
        ("name: x\ntrials: 0\n", "trials"),
        ("name: x\nseed: -1\n", "seed"),
        ("name: x\ndurations: 5\n", "durations"),
        (
            "name: x\nfaults: [{kind: host_partition, at: 1, duration: 1, host: -1}]\n",
            "faults[0].host",
        ),
        ("name: x\nfaults: [{kind: host_partition, at: 1, duration: 1}]\n", "faults[0].host"),
        (
            "name: x\nfaults: [{kind: host_partition, at: 1, duration: 1, target: 0}]\n",
            "faults[0].target",
        ),
    ],
)
def test_a_bad_file_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_experiment(str(path))
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_an_unknown_experiment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="original"):
        load_experiment("nonexistent")


def test_overrides_are_validated_too() -> None:
    with pytest.raises(ConfigError, match="duration"):
        Experiment(name="x").with_overrides(duration=-1.0)


def test_rates_are_integers_drawn_from_the_range_and_reproducible() -> None:
    experiment = Experiment(name="x", vms=50, rate_range=(1, 6), seed=11)
    rates = draw_rates(experiment, trial=2)
    assert rates == draw_rates(experiment, trial=2)
    assert rates != draw_rates(experiment, trial=3)
    assert set(rates) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0} and len(set(rates)) > 1


def test_listed_rates_are_used_as_they_are() -> None:
    experiment = Experiment(name="x", vms=2, rates=(1.5, 4.0), rate_range=None)
    assert plan_trial(experiment, 1).rates == (1.5, 4.0)


def test_every_trial_gets_its_own_run_id_and_vm_seeds() -> None:
    experiment = Experiment(name="x")
    one, two = plan_trial(experiment, 1), plan_trial(experiment, 2)
    assert one.run != two.run
    assert one.vm_seeds != two.vm_seeds
    assert plan_trial(experiment, 1).vm_seeds == one.vm_seeds
    assert one.project.startswith("clocklab-x-t1-")


def test_two_runs_of_one_trial_get_projects_of_their_own_that_compose_and_swarm_accept() -> None:
    experiment = Experiment(name="a_very_long_experiment_name_of_forty_chr"[:40], vms=200)
    one, again = plan_trial(experiment, 1000), plan_trial(experiment, 1000)
    assert one.project != again.project
    assert one.project == one.project.lower() and "." not in one.project
    assert len(f"{one.project}_vm199") <= 63


def test_a_backend_is_refused_a_fault_it_does_not_offer_naming_the_fault() -> None:
    from orchestrator.backends import check_schedule, offered_faults
    from orchestrator.backends.local import LocalBackend
    from orchestrator.faults import parse_faults

    faults = parse_faults(
        [
            {"kind": "kill", "at": 1, "duration": 1, "target": 0},
            {"kind": "partition", "at": 3, "duration": 1, "groups": [[0], [1, 2]]},
        ],
        3,
        None,
    )
    backend = LocalBackend(plan_trial(Experiment(name="x", vms=3), 1), RunDir(Path("run")))
    assert offered_faults(backend) == ["kill", "pause"]
    with pytest.raises(ConfigError, match=r"faults\[1\].kind: the local backend cannot partition"):
        check_schedule(faults, 3, backend)


def test_realtime_is_asked_of_every_vm_only_when_the_experiment_says_so() -> None:
    assert "CLOCKLAB_REALTIME" not in plan_trial(Experiment(name="x"), 1).vm_settings(0)
    on = Experiment.from_mapping({"name": "x", "realtime": True}, "x.yaml")
    assert plan_trial(on, 1).vm_settings(2)["CLOCKLAB_REALTIME"] == "1"
    assert Experiment(name="x").with_overrides(realtime=True).realtime is True
    with pytest.raises(ConfigError, match="realtime: must be true or false"):
        Experiment.from_mapping({"name": "x", "realtime": "always"}, "x.yaml")


def test_auth_is_on_unless_the_experiment_turns_it_off() -> None:
    assert Experiment(name="x").auth is True
    off = Experiment.from_mapping({"name": "x", "auth": False}, "x.yaml")
    assert off.auth is False and off.to_dict()["auth"] is False
    with pytest.raises(ConfigError, match="auth: must be true or false"):
        Experiment.from_mapping({"name": "x", "auth": "no"}, "x.yaml")
