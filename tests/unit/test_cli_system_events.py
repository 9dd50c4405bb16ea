"""``events`` on the client side: the since/until values the docker CLI sends and its event lines."""

from __future__ import annotations

import time

import pytest

from berth.cli.commands.system import format_event
from berth.timeutil import timestamp_param

NOW = 1_700_000_000.75


@pytest.mark.parametrize("value,want", [
    ("0s", "1700000000"), ("1m", "1699999940"), ("1h30m", "1699994600"), ("-5s", "1700000005"),
    ("1700000000", "1700000000"), ("1700000000.5", "1700000000.5"), ("0", "0"),
    ("2023-11-14T22:13:20Z", "1700000000.000000000"), ("2023-11-14T22:13:20.25+01:00", "1699996400.250000000"),
])
def test_timestamp_param(value, want):
    assert timestamp_param(value, NOW) == want


def test_timestamp_param_error():
    with pytest.raises(ValueError, match='failed to parse value as time or duration: "abc"'):
        timestamp_param("abc", NOW)


@pytest.mark.parametrize("tz,stamp", [("UTC", "2023-11-14T22:13:20.050000000Z"),
                                      ("Europe/Paris", "2023-11-14T23:13:20.050000000+01:00")])
def test_format_event(monkeypatch, tz, stamp):
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        event = {"Type": "image", "Action": "tag", "Actor": {"ID": "sha256:ab", "Attributes": {"name": "b:1", "a": "x"}},
                 "time": 1700000000, "timeNano": 1700000000_050000000}
        assert format_event(event) == f"{stamp} image tag sha256:ab (a=x, name=b:1)"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
