"""Clock skew in an experiment: parsed naming the bad field, handed to each VM by its host."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.errors import ConfigError
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial
from orchestrator.skew import Skew

BASE = {"name": "skewed", "vms": 6}


def test_a_vm_gets_its_hosts_offset_plus_its_own() -> None:
    experiment = Experiment.from_mapping(
        BASE | {"skew": {"hosts": {1: 0.25}, "vms": {4: 0.5, 0: -0.1}}}, "x.yaml"
    )
    skew = experiment.skew
    assert [skew.offset(vm, hosts=3) for vm in range(6)] == [-0.1, 0.25, 0.0, 0.0, 0.75, 0.0]
    assert skew.spread(6, hosts=3) == pytest.approx(0.85)
    plan = plan_trial(experiment, 1)
    assert "CLOCKLAB_CLOCK_OFFSET" not in plan.vm_settings(1)  # one host: host 1 is not there
    on_three = dataclasses.replace(plan, hosts=3)
    assert on_three.vm_settings(4)["CLOCKLAB_CLOCK_OFFSET"] == "0.75"
    assert experiment.to_dict()["skew"] == {"hosts": {"1": 0.25}, "vms": {"0": -0.1, "4": 0.5}}


@pytest.mark.parametrize(
    ("skew", "field", "problem"),
    [
        ({"host": {1: 0.1}}, "skew", "mapping of hosts and vms"),
        ({"vms": {6: 0.1}}, "skew.vms", "names VM 6, but there are 6 VMs"),
        ({"hosts": {"a": 0.1}}, "skew.hosts", "'a' is not an id"),
        ({"hosts": {0: "soon"}}, "skew.hosts", "offset of 0 must be seconds"),
        ({"vms": {0: 1e6}}, "skew.vms", "within ±3600"),
    ],
)
def test_a_bad_skew_is_refused_naming_the_field(skew: object, field: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        Experiment.from_mapping(BASE | {"skew": skew}, "x.yaml")
    assert caught.value.field == field


def test_no_skew_means_one_clock() -> None:
    assert Skew().spread(3, hosts=1) == 0.0
    assert "CLOCKLAB_CLOCK_OFFSET" not in plan_trial(Experiment(name="x"), 1).vm_settings(0)
