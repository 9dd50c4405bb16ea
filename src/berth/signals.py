"""Signals as docker accepts them (``docker kill --signal``, ``--stop-signal``, ``STOPSIGNAL``):
its ``signal.ParseSignal`` (moby ``pkg/signal``): a non-zero number, or a name with or without
``SIG`` in any case (``KILL``, ``sigterm``), including ``RTMIN+N`` and ``RTMAX-N``.
"""

from __future__ import annotations

import re
import signal

from berth.errors import InvalidParameter

_BY_NAME = {s.name.removeprefix("SIG"): int(s) for s in signal.Signals}
_REALTIME = re.compile(r"RTM(IN|AX)(?:([+-])(\d+))?")


def parse_signal(value: str) -> int:
    """The number of signal ``value`` (``9``, ``KILL``, ``SIGKILL``, ``RTMIN+3``).

    Raises InvalidParameter ``Invalid signal: VALUE`` (docker's text) for 0, an unknown name, or
    a real-time offset outside docker's table (``RTMIN+0..15``, ``RTMAX-14..0``).
    """
    if value.isdigit():
        if int(value) == 0:
            raise InvalidParameter(f"Invalid signal: {value}")
        return int(value)
    name = value.upper().removeprefix("SIG")
    if name in _BY_NAME:
        return _BY_NAME[name]
    match = _REALTIME.fullmatch(name)
    if match:
        base, sign, offset = match.groups()
        n = int(offset or 0)
        if base == "IN" and sign in (None, "+") and n <= 15:
            return int(signal.SIGRTMIN) + n
        if base == "AX" and sign in (None, "-") and n <= 14:
            return int(signal.SIGRTMAX) - n
    raise InvalidParameter(f"Invalid signal: {value}")
