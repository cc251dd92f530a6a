"""Which backend a command gets when it names none and no engine answers."""

from __future__ import annotations

import pytest

from orchestrator import backend_choice
from orchestrator.backends.local import LocalBackend
from orchestrator.errors import BackendUnavailable
from orchestrator.events import Event, Level, Notice


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(context: str | None) -> None:
        raise BackendUnavailable("no Docker engine answers at unix:///nowhere.sock: refused")

    monkeypatch.setattr(backend_choice, "connect_from_env", refuse)


def test_without_an_engine_the_trials_run_locally_after_a_warning_saying_why(
    no_engine: None,
) -> None:
    said: list[Event] = []
    assert backend_choice.backend_factory(None, None, said.append, {"kill"}) is LocalBackend
    assert said == [
        Notice(
            "no Docker engine answers at unix:///nowhere.sock: refused: running on the local "
            "backend instead (--backend local chooses it without this warning)",
            Level.WARNING,
        )
    ]


def test_without_an_engine_a_schedule_the_local_backend_cannot_run_names_the_engine(
    no_engine: None,
) -> None:
    with pytest.raises(BackendUnavailable) as refused:
        backend_choice.backend_factory(None, None, [].append, {"partition", "pause"})
    assert str(refused.value).startswith("no Docker engine answers at unix:///nowhere.sock")
    assert "The local backend cannot partition, which the schedule needs" in str(refused.value)


def test_an_engine_asked_for_by_name_is_never_replaced(no_engine: None) -> None:
    with pytest.raises(BackendUnavailable, match="no Docker engine answers"):
        backend_choice.backend_factory("docker", None, [].append)
