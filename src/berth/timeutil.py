"""Time formats docker uses: RFC 3339 with nanoseconds (Go's ``time.RFC3339Nano``), and the
``since``/``until`` arguments of ``logs``, ``events`` and filters (docs: "docker logs", "docker
events": a Unix timestamp with optional fraction, an RFC 3339 date, or a Go duration relative to now).
"""

from __future__ import annotations

import re
import time
from datetime import datetime


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


_GO_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                      "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` (``1m30s``, ``1.5h``, ``-300ms``, ``.5s``) in nanoseconds.

    Raises ValueError with Go's message: ``time: invalid duration "x"``, ``time: missing unit in
    duration "5"``, ``time: unknown unit "x" in duration "5x"``.
    """
    if text in ("0", "+0", "-0"):
        return 0
    body = text[1:] if text[:1] in ("+", "-") else text
    sign = -1 if text.startswith("-") else 1
    total, pos = 0, 0
    for match in re.finditer(r"(\d*\.?\d*)([^\d.]*)", body):
        if match.start() != pos or not match.group(0):
            break
        number, unit = match.groups()
        if number in ("", "."):
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _GO_DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += round(float(number) * _GO_DURATION_UNITS[unit])
        pos = match.end()
    if pos != len(body) or not body:
        raise ValueError(f'time: invalid duration "{text}"')
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
    return now_ns - parse_go_duration(value)


_DATE_PREFIX = (r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
                r"(Z|z|[+-]\d{2}:\d{2})?")


def timestamp_param(value: str, now: float | None = None) -> str:
    """A ``--since``/``--until`` value of ``logs`` or ``events`` as the docker CLI sends it (its
    ``GetTimestamp``): a Go duration is that long before ``now`` in whole seconds; an RFC 3339 date
    or a prefix of one (``2013-01-02``, ``2013-01-02T13:23``; local time without a zone) becomes
    ``SECONDS.NANOS``; a Unix time is passed on as given.

    Raises ValueError ``failed to parse value as time or duration: "VALUE"``.
    """
    from datetime import UTC, timedelta, timezone

    now = time.time() if now is None else now
    if value != "0":
        try:
            return str(int(now - parse_go_duration(value) / 1e9))
        except ValueError:
            pass
    match = re.fullmatch(_DATE_PREFIX, value)
    if match:
        *fields, frac, zone = match.groups()
        year, month, day, hour, minute, second = (int(f or 0) for f in fields)
        if zone in (None, ""):
            tz = datetime.fromtimestamp(now).astimezone().tzinfo
        elif zone in "Zz":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        seconds = int(datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp())
        return f"{seconds}.{int((frac or '0').ljust(9, '0')):09d}"
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    raise ValueError(f'failed to parse value as time or duration: "{value}"')


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
