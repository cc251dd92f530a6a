import json
import subprocess
import sys
from pathlib import Path

import pytest

from vm_node.config import SETTINGS, LogStream, NodeConfig, PeerAddress, help_text
from vm_node.errors import SettingError, VmNodeError
from vm_node.resume import Resume


def test_settings_come_from_the_environment() -> None:
    env = {"CLOCKLAB_VM": "2", "CLOCKLAB_VMS": "4", "CLOCKLAB_RATE": "5", "CLOCKLAB_RUN": "x"}
    config = NodeConfig.from_env(env)
    assert (config.vm, config.vms, config.rate, config.run) == (2, 4, 5.0, "x")
    assert config.peer_ids == (0, 1, 3)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("yes", True), ("0", False), ("off", False)]
)
def test_realtime_is_a_flag(raw: str, value: bool) -> None:
    assert NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_REALTIME": raw}).realtime is value
    assert NodeConfig.from_env({"CLOCKLAB_VM": "0"}).realtime is False


def test_a_flag_wins_over_the_environment() -> None:
    config = NodeConfig.from_args(["--rate", "3"], {"CLOCKLAB_VM": "0", "CLOCKLAB_RATE": "6"})
    assert config.rate == 3.0


def test_the_listen_port_defaults_to_base_port_plus_id() -> None:
    assert (
        NodeConfig.from_env({"CLOCKLAB_VM": "2", "CLOCKLAB_BASE_PORT": "7000"}).listen_port == 7002
    )


def test_an_explicit_peer_list_is_parsed() -> None:
    config = NodeConfig.from_args(["--vm", "0", "--peers", "1=127.0.0.1:6001, 2=vm2:5000"], {})
    assert config.peers == {1: PeerAddress("127.0.0.1", 6001), 2: PeerAddress("vm2", 5000)}


def test_start_peers_are_parsed_and_must_be_other_vms() -> None:
    config = NodeConfig.from_env(
        {"CLOCKLAB_VM": "0", "CLOCKLAB_START_PEERS": "1=172.30.0.11:5000,2=172.30.0.12:5000"}
    )
    assert config.start_peers == {
        1: PeerAddress("172.30.0.11", 5000),
        2: PeerAddress("172.30.0.12", 5000),
    }
    with pytest.raises(SettingError, match="start_peers"):
        NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_START_PEERS": "0=172.30.0.10:5000"})


def test_time_scale_divides_the_tick_period() -> None:
    config = NodeConfig(vm=0, rate=4, time_scale=10)
    assert config.tick_period == pytest.approx(0.025)


RESUME = '{"incarnation": 2, "lamport": 7, "vector": [3, 1, 0], "start_at": 1000.5}'


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({}, "vm"),
        ({"CLOCKLAB_VM": "x"}, "vm"),
        ({"CLOCKLAB_VM": "3", "CLOCKLAB_VMS": "3"}, "vm"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RATE": "0"}, "rate"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RATE": "inf"}, "rate"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_DURATION": "-1"}, "duration"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_TIME_SCALE": "0"}, "time_scale"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_EVENT_RANGE": "0"}, "event_range"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_PORT": "70000"}, "port"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_PEERS": "1=nohost"}, "peers"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_PEERS": "0=h:1"}, "peers"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_LOG_STREAM": "syslog"}, "log_stream"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_REALTIME": "maybe"}, "realtime"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY_FILE": "/nonexistent/key"}, "auth_key_file"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY": ""}, "auth_key"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": '{"incarnation": 1}'}, "resume"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": RESUME.replace("[3, 1, 0]", "[3]")}, "resume"),
    ],
)
def test_an_invalid_setting_is_named_in_the_error(env: dict[str, str], setting: str) -> None:
    with pytest.raises(SettingError) as info:
        NodeConfig.from_env(env)
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_a_handed_back_resume_names_the_incarnation_and_its_clocks() -> None:
    config = NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": RESUME})
    assert config.resume is not None and config.resume.incarnation == 2
    assert config.resume.resume == Resume(7, (3, 1, 0), 1000.5)
    assert json.dumps(config.resume.resume.to_json(2)) == json.dumps(json.loads(RESUME))


def test_the_start_line_config_never_shows_the_auth_key() -> None:
    logged = NodeConfig(vm=0, auth_key="s3cret").to_log()
    assert logged["auth"] is True
    assert "s3cret" not in str(logged)


def test_the_service_exits_2_naming_a_bad_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vm_node", "--vm", "0", "--rate", "-2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "rate" in result.stderr and "-2" in result.stderr


def test_a_setting_error_is_a_vm_node_error() -> None:
    with pytest.raises(VmNodeError):
        NodeConfig.from_env({"CLOCKLAB_VM": "-1"})


def test_the_log_goes_to_the_file_unless_stdout_is_asked_for() -> None:
    assert NodeConfig.from_env({"CLOCKLAB_VM": "0"}).log_stream is LogStream.FILE
    env = {"CLOCKLAB_VM": "0", "CLOCKLAB_LOG_STREAM": "stdout"}
    assert NodeConfig.from_env(env).log_stream is LogStream.STDOUT


def test_the_auth_key_is_read_from_a_file_and_never_logged(tmp_path: Path) -> None:
    secret = tmp_path / "clocklab_auth_key"
    secret.write_text("k3y-from-a-secret\n")
    config = NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY_FILE": str(secret)})
    assert config.auth_key == "k3y-from-a-secret"
    logged = config.to_log()
    assert logged["auth"] is True
    assert "k3y" not in str(logged)


@pytest.mark.parametrize(("content", "problem"), [("", "holds no key"), ("\n", "holds no key")])
def test_an_empty_key_file_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    secret = tmp_path / "key"
    secret.write_text(content)
    with pytest.raises(SettingError, match=problem):
        NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY_FILE": str(secret)})


def test_a_key_and_a_key_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("a")
    env = {"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY": "b", "CLOCKLAB_AUTH_KEY_FILE": str(secret)}
    with pytest.raises(SettingError, match="not both"):
        NodeConfig.from_env(env)


def test_the_help_shows_each_default_as_the_field_has_it() -> None:
    defaults = NodeConfig(vm=0)
    shown = {s.name: help_text(s) for s in SETTINGS}
    assert shown["vms"].endswith(f"(default {defaults.vms})")
    assert shown["log_dir"].endswith(f"(default {defaults.log_dir})")
    assert shown["bye_timeout"].endswith(f"(default {defaults.bye_timeout:g})")
    assert shown["realtime"].endswith("(default false)")
    assert "default" not in shown["vm"] and "default" not in shown["links"]


def test_no_setting_writes_its_default_by_hand() -> None:
    by_hand = [s.name for s in SETTINGS if "(default" in s.help and s.name != "ready_timeout"]
    assert by_hand == []
