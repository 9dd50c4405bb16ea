"""Healthcheck rules (``berth.containers.health``) as dockerd 20.10 applies them: probe resolution
(getProbe, defaults), Go duration text of the timeout message, output truncation (4096 bytes then
``...``), and the status machine of handleProbeResult (streak, retries, start period, 5-entry log)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.containers.health import (
    OutputBuffer,
    Probe,
    apply_result,
    go_duration,
    probe_of,
    status_suffix,
)
from berth.containers.model import Container, Health, HealthcheckResult, State

S = 1_000_000_000
STARTED = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("config, expected", [
    ({}, None),
    ({"Healthcheck": {"Test": []}}, None),
    ({"Healthcheck": {"Test": ["NONE"]}}, None),
    ({"Healthcheck": {"Test": ["BOGUS", "x"]}}, None),
    ({"Healthcheck": {"Test": ["CMD"]}}, None),
    ({"Healthcheck": {"Test": ["CMD", "true", "x"]}}, Probe(("true", "x"), 30 * S, 30 * S, 0, 3)),
    ({"Healthcheck": {"Test": ["CMD-SHELL", "exit 1"]}}, Probe(("/bin/sh", "-c", "exit 1"), 30 * S, 30 * S, 0, 3)),
    ({"Shell": ["/bin/ash", "-eo"], "Healthcheck": {"Test": ["CMD-SHELL", "ls"]}},
     Probe(("/bin/ash", "-eo", "ls"), 30 * S, 30 * S, 0, 3)),
    ({"Healthcheck": {"Test": ["CMD", "t"], "Interval": S // 5, "Timeout": S, "StartPeriod": 2 * S, "Retries": 5}},
     Probe(("t",), S // 5, S, 2 * S, 5)),
    ({"Healthcheck": {"Test": ["CMD", "t"], "Interval": 0, "Timeout": 0, "Retries": 0}},
     Probe(("t",), 30 * S, 30 * S, 0, 3)),
])
def test_probe_of(config: dict[str, Any], expected: Probe | None) -> None:
    assert probe_of(config) == expected


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (500_000_000, "500ms"), (S, "1s"), (1_500_000_000, "1.5s"), (30 * S, "30s"), (90 * S, "1m30s"),
    (3600 * S, "1h0m0s"), (1_250_000, "1.25ms"), (1500, "1.5µs"), (7, "7ns"), (61 * S + 5, "1m1.000000005s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize("chunks, text", [
    ([b"hi\n"], "hi\n"),
    ([b"a" * 4096], "a" * 4096),
    ([b"a" * 5000], "a" * 4096 + "..."),
    ([b"a" * 4000, b"b" * 200, b"c"], "a" * 4000 + "b" * 96 + "..."),
    ([b"\xff ok"], "\ufffd ok"),
])
def test_output_buffer(chunks: list[bytes], text: str) -> None:
    out = OutputBuffer()
    for chunk in chunks:
        out.write(chunk)
    assert out.text() == text


def result(code: int, after_start: float = 100.0) -> HealthcheckResult:
    whole, frac = divmod(after_start, 1)
    stamp = f"2026-01-01T00:{int(whole) // 60:02d}:{int(whole) % 60:02d}.{int(frac * 1e9):09d}Z"
    return HealthcheckResult(stamp, stamp, code, "")


PROBE = Probe(("t",), S, S, 0, 3)


@pytest.mark.parametrize("codes, status, streak, changes", [
    ([0], "healthy", 0, [True]),
    ([1], "starting", 1, [False]),
    ([1, 1, 1], "unhealthy", 3, [False, False, True]),
    ([1, 2, -1, 1], "unhealthy", 4, [False, False, True, False]),
    ([0, 1, 1], "healthy", 2, [True, False, False]),
    ([0, 1, 1, 1, 0], "healthy", 0, [True, False, False, True, True]),
])
def test_apply_result_retries(codes: list[int], status: str, streak: int, changes: list[bool]) -> None:
    health = Health()
    seen = [apply_result(health, result(code), PROBE, STARTED) for code in codes]
    assert (health.status, health.failing_streak, seen) == (status, streak, changes)


def test_start_period_failures_do_not_count_while_starting() -> None:
    """Failures of probes started inside the start period leave the streak alone while starting;
    once healthy they count even inside it (dockerd only checks the period while starting)."""
    probe = Probe(("t",), S, S, 10 * S, 1)
    health = Health()
    assert not apply_result(health, result(1, 5), probe, STARTED)
    assert (health.status, health.failing_streak) == ("starting", 0)
    assert apply_result(health, result(1, 10), probe, STARTED)
    assert (health.status, health.failing_streak) == ("unhealthy", 1)
    health = Health()
    apply_result(health, result(0, 1), probe, STARTED)
    apply_result(health, result(1, 2), probe, STARTED)
    assert (health.status, health.failing_streak) == ("unhealthy", 1)


def test_log_keeps_last_five() -> None:
    health = Health()
    for i in range(7):
        apply_result(health, HealthcheckResult(STARTED, STARTED, 0, str(i)), PROBE, STARTED)
    assert [r.output for r in health.log] == ["2", "3", "4", "5", "6"]


def test_state_json_and_record_round_trip() -> None:
    """``State.Health`` is omitted without a healthcheck (Go omitempty) and survives the record."""
    c = Container("c" * 64, "n", STARTED, "busybox", "sha256:x", {}, {})
    assert "Health" not in c.state.to_json()
    c.state = State(status="running", health=Health("healthy", 0, [HealthcheckResult(STARTED, STARTED, 0, "ok")]))
    assert c.state.to_json()["Health"] == {"Status": "healthy", "FailingStreak": 0, "Log": [
        {"Start": STARTED, "End": STARTED, "ExitCode": 0, "Output": "ok"}]}
    again = Container.from_record(c.to_record())
    assert again.state == c.state
    assert [status_suffix(Health(s)) for s in ("starting", "healthy", "unhealthy")] == [
        "health: starting", "healthy", "unhealthy"]
