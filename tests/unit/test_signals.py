"""berth.signals.parse_signal against docker's signal.ParseSignal (moby pkg/signal, Linux table)."""

from __future__ import annotations

import signal

import pytest

from berth.errors import InvalidParameter
from berth.signals import parse_signal


@pytest.mark.parametrize(("value", "number"), [
    ("9", 9), ("15", 15), ("99", 99), ("KILL", 9), ("kill", 9), ("SIGKILL", 9), ("sigterm", 15), ("HUP", 1),
    ("USR1", int(signal.SIGUSR1)), ("RTMIN", int(signal.SIGRTMIN)), ("RTMIN+3", int(signal.SIGRTMIN) + 3),
    ("SIGRTMAX-2", int(signal.SIGRTMAX) - 2), ("RTMAX", int(signal.SIGRTMAX)),
])
def test_parse_signal(value, number):
    assert parse_signal(value) == number


@pytest.mark.parametrize("value", ["0", "", "NOPE", "SIG", "RTMIN+16", "RTMAX-15", "RTMIN-1", "_DFL", "-1", "9.0"])
def test_parse_signal_refuses(value):
    with pytest.raises(InvalidParameter, match=f"^Invalid signal: {value}$".replace("+", r"\+").replace(".", r"\.")):
        parse_signal(value)
