"""Time formats docker uses: RFC 3339 with nanoseconds (Go's ``time.RFC3339Nano``), and the
``since``/``until`` arguments of ``logs``, ``events`` and filters (docs: "docker logs", "docker
events": a Unix timestamp with optional fraction, an RFC 3339 date, or a Go duration relative to now).
"""

from __future__ import annotations

import re
import time
from datetime import datetime

_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def rfc3339_nano(ns: int | None = None) -> str:
    """``ns`` nanoseconds since the epoch (default: now) as Go's RFC3339Nano in UTC."""
    if ns is None:
        ns = time.time_ns()
    secs, nanos = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    frac = f"{nanos:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def parse_rfc3339_ns(value: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (fraction up to 9 digits, Z or ±hh:mm).

    Raises ValueError for anything else. Go's zero time ``0001-01-01T00:00:00Z`` gives a negative value.
    """
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?", value.strip())
    if not m:
        raise ValueError(f"invalid time {value!r}")
    date, clock, frac, tz = m.groups()
    tz = "+00:00" if tz in (None, "Z", "z") else tz
    dt = datetime.fromisoformat(f"{date}T{clock}{tz}")
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return int(dt.timestamp()) * 1_000_000_000 + nanos


def parse_duration(value: str) -> float:
    """A Go duration (``1h30m``, ``10s``, ``250ms``) in seconds. Raises ValueError."""
    value = value.strip()
    if not value:
        raise ValueError("empty duration")
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            raise ValueError(f"time: invalid duration {value!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or (body != "0" and pos == 0):
        if body == "0":
            return 0.0
        raise ValueError(f"time: invalid duration {value!r}")
    return sign * total


def parse_timestamp_arg(value: str, now_ns: int | None = None) -> int:
    """A ``since``/``until`` argument as nanoseconds since the epoch.

    Accepts ``1700000000``, ``1700000000.123456789``, RFC 3339 dates and durations (``10m`` means
    ten minutes ago). Raises ValueError.
    """
    value = value.strip()
    now_ns = time.time_ns() if now_ns is None else now_ns
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        secs, _, frac = value.partition(".")
        return int(secs) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)
    try:
        return parse_rfc3339_ns(value)
    except ValueError:
        pass
    return now_ns - int(parse_duration(value) * 1e9)


def human_duration(seconds: float) -> str:
    """Go's ``units.HumanDuration`` (used in "Up 5 minutes" and "2 hours ago")."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
