import json
import subprocess
import sys

import pytest

from vm_node.config import ConfigError, NodeConfig, PeerAddress
from vm_node.eventlog import Resume


def test_settings_come_from_the_environment() -> None:
    env = {"CLOCKLAB_VM": "2", "CLOCKLAB_VMS": "4", "CLOCKLAB_RATE": "5", "CLOCKLAB_RUN": "x"}
    config = NodeConfig.from_env(env)
    assert (config.vm, config.vms, config.rate, config.run) == (2, 4, 5.0, "x")
    assert config.peer_ids == (0, 1, 3)


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
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_ECHO": "maybe"}, "echo"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_AUTH_KEY": ""}, "auth_key"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": '{"incarnation": 1}'}, "resume"),
        ({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": RESUME.replace("[3, 1, 0]", "[3]")}, "resume"),
    ],
)
def test_an_invalid_setting_is_named_in_the_error(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        NodeConfig.from_env(env)
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_a_handed_back_resume_names_the_incarnation_and_its_clocks() -> None:
    config = NodeConfig.from_env({"CLOCKLAB_VM": "0", "CLOCKLAB_RESUME": RESUME})
    assert config.resume is not None and config.resume.incarnation == 2
    assert config.resume.resume == Resume(7, (3, 1, 0), 1000.5)
    assert config.resume.resume.to_json(2) == json.loads(RESUME)


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
