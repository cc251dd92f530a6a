"""manifest.json as written and read: old files load, and a round trip keeps every key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from orchestrator.experiment import Experiment
from vm_node.rundir import FaultRecord, Manifest, ManifestError, Outcome, RunDir

# A manifest of the faults experiment with a host fault and skew added (a fault of each
# kind, one that failed), as the orchestrator wrote it before manifests were msgspec Structs.
WRITTEN = Path(__file__).parent / "data" / "manifest-faults.json"
FAULTS = Path(__file__).parents[2] / "experiments" / "faults.yaml"


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "faults" / "trial-1")
    run.path.mkdir(parents=True)
    shutil.copy(WRITTEN, run.manifest_path)
    return run


def test_a_manifest_written_before_loads_with_its_faults(run: RunDir) -> None:
    manifest = run.read_manifest()
    assert (manifest.experiment, manifest.trial) == ("faults", 1)
    assert manifest.outcome is Outcome.COMPLETED
    assert manifest.rates == (2.0, 1.0, 2.0) and manifest.duration == 60.0
    assert manifest.config["skew"] == {"hosts": {"1": 0.25}, "vms": {"0": -0.1}}
    kill, pause, partition, loss, *_, host = manifest.faults
    assert kill == FaultRecord("kill", 8.0, 8.0, (1,), start=1764900008.5, end=1764900016.5)
    assert pause.errors == ("begin: the local backend could not pause vm2",) and pause.end is None
    assert partition.groups == ((0,), (1, 2)) and partition.targets == ()
    assert loss.condition is not None and loss.condition["probability"] == 0.2
    assert host.host == 1


def test_a_manifest_read_and_written_again_keeps_every_key_and_value(run: RunDir) -> None:
    before = json.loads(WRITTEN.read_text())
    run.write_manifest(run.read_manifest())
    after = json.loads(run.manifest_path.read_text())
    # a manifest from before nodes' clocks were read gains an empty list of them
    assert after == before | {"faults": after["faults"], "node_offsets": []}
    # A fault's record leaves out what the fault does not have, as the schedule did.
    for old, new in zip(before["faults"], after["faults"], strict=True):
        assert new == {k: v for k, v in old.items() if v != []}


def test_a_manifest_field_of_the_wrong_type_is_named(run: RunDir) -> None:
    raw = json.loads(WRITTEN.read_text()) | {"trial": "one"}
    run.manifest_path.write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match=r"manifest\.json: bad manifest field .*trial"):
        run.read_manifest()


def test_a_manifest_that_is_not_an_object_is_refused(run: RunDir) -> None:
    run.manifest_path.write_text("[1, 2]")
    with pytest.raises(ManifestError, match="bad manifest field"):
        run.read_manifest()


def test_a_run_without_a_manifest_is_named_after_its_path(tmp_path: Path) -> None:
    manifest = RunDir(tmp_path / "original" / "trial-3").read_manifest()
    assert manifest == Manifest(experiment="original", trial=3)


def test_the_experiment_is_recorded_in_the_manifest_as_before() -> None:
    data = yaml.safe_load(FAULTS.read_text())
    data["faults"].append({"kind": "host_partition", "at": 56, "duration": 2, "host": 1})
    data["skew"] = {"hosts": {1: 0.25}, "vms": {0: -0.1}}
    config = Experiment.from_mapping(data, str(FAULTS)).to_dict()
    recorded = json.loads(WRITTEN.read_text())["config"]
    assert json.loads(json.dumps(config)) == recorded
    assert list(config) == list(recorded)
