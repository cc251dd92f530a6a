"""Each trial's key: a private file the VMs read as a secret, never written into the stack."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from orchestrator.auth import KEY_FILE_ENV, PREFIX, SECRET, SECRET_TARGET, TrialKey, remove_orphans
from orchestrator.backends.compose.render import render_stack
from orchestrator.backends.swarm.render import STACK_SECRET, swarm_document
from orchestrator.experiment import Experiment
from orchestrator.plan import plan_trial

LABELS = {"clocklab.run": "r", "clocklab.session": "s"}
WORKERS, ROUNDS = 8, 400  # trials at once, and keys each makes


def test_a_key_is_fresh_private_and_gone_after_removal() -> None:
    one, two = TrialKey.create(), TrialKey.create()
    try:
        assert one.path.read_text() != two.path.read_text()
        assert len(one.path.read_text()) == 64
        assert stat.S_IMODE(one.folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(one.path.stat().st_mode) == 0o600
    finally:
        one.remove()
        two.remove()
    assert not one.folder.exists()
    one.remove()  # twice is fine


def test_a_killed_command_s_key_folder_goes_but_a_running_one_s_stays(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    orphan = tmp_path / f"{PREFIX}{dead}-abc"
    alive = tmp_path / f"{PREFIX}{os.getpid()}-def"
    unrelated = tmp_path / f"{PREFIX}notapid"
    for folder in (orphan, alive, unrelated):
        folder.mkdir()
        (folder / "auth.key").write_text("k")
    assert remove_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and alive.exists() and unrelated.exists()


def test_keys_made_and_removed_at_once_by_many_trials_never_race(tmp_path: Path) -> None:
    """Trials of one command (threads) make and remove keys at once, each leaving an
    orphan of a killed command for all of them to find, while another command's folders
    stay: every look for orphans tolerates folders vanishing under it, and removes no
    running command's."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                          stdin=subprocess.PIPE) as other:  # fmt: skip
        others = [tmp_path / f"{PREFIX}{other.pid}-{n}" for n in range(3)]
        for folder in others:
            folder.mkdir()

        def trial(worker: int) -> int:
            for n in range(ROUNDS):
                (tmp_path / f"{PREFIX}{dead}-{worker}-{n}").mkdir()  # found by any of us
                key = TrialKey.create(top=tmp_path)
                assert key.path.read_text()  # nobody removed it under us
                key.remove()
            return ROUNDS

        try:
            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                made = sum(pool.map(trial, range(WORKERS)))
        finally:
            other.stdin.close()  # type: ignore[union-attr]
        remove_orphans(tmp_path)
        assert made == WORKERS * ROUNDS
        assert sorted(tmp_path.iterdir()) == others  # no orphan, no key of ours left


def test_the_stack_names_the_key_file_as_a_secret_but_never_holds_the_key() -> None:
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    key = TrialKey.create()
    try:
        document = render_stack(plan, "img", LABELS, key.path)
        text = yaml.safe_dump(document)
        assert key.path.read_text() not in text
    finally:
        key.remove()
    assert document["secrets"] == {SECRET: {"file": str(key.path), "labels": LABELS}}
    for service in document["services"].values():
        assert service["secrets"] == [SECRET]
        assert service["environment"][KEY_FILE_ENV] == SECRET_TARGET


def test_without_a_key_there_is_no_secret() -> None:
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    document = render_stack(plan, "img", LABELS)
    assert "secrets" not in document
    assert all(KEY_FILE_ENV not in s["environment"] for s in document["services"].values())


def test_under_swarm_the_secret_belongs_to_the_vm_user_alone() -> None:
    plan = plan_trial(Experiment(name="x", vms=2), 1)
    document = swarm_document(render_stack(plan, "img", LABELS, Path("/k/auth.key")), plan, "id")
    assert document["secrets"] == {STACK_SECRET: {"file": "/k/auth.key", "labels": LABELS}}
    (secret,) = document["services"]["vm0"]["secrets"]
    assert secret == {
        "source": STACK_SECRET,
        "target": SECRET,
        "uid": "10001",
        "gid": "10001",
        "mode": 0o400,
    }


def test_the_longest_stack_name_leaves_its_secret_within_swarms_64_characters() -> None:
    experiment = Experiment(name="an_experiment_name_of_forty_characters_x", vms=200)
    plan = plan_trial(experiment, 1000)
    document = swarm_document(render_stack(plan, "img", LABELS, Path("/k/auth.key")), plan, "id")
    (name,) = document["secrets"]
    assert len(f"{plan.project}_{name}") <= 64
