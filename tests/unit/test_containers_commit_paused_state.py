"""The container record's ``commit_paused`` mark: persisted with the state, absent from old
records (False), and never shown in the Engine API's ``State``."""

from __future__ import annotations

import pytest

from berth.containers.model import Container, State


def _container(state: State) -> Container:
    return Container("a" * 64, "x", "2024-01-01T00:00:00Z", "busybox", "sha256:" + "b" * 64, {}, {}, state=state)


@pytest.mark.parametrize("mark", [True, False])
def test_commit_paused_round_trips(mark):
    record = _container(State(status="paused", commit_paused=mark)).to_record()
    assert Container.from_record(record).state.commit_paused is mark


def test_record_without_the_mark_is_a_user_pause():
    record = _container(State(status="paused")).to_record()
    del record["state"]["commit_paused"]
    assert Container.from_record(record).state.commit_paused is False


def test_mark_is_not_in_the_api_state():
    assert set(State(status="paused", commit_paused=True).to_json()) == {
        "Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error",
        "StartedAt", "FinishedAt"}
