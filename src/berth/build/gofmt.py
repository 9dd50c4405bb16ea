"""Go's ``fmt`` renderings that docker 20.10 writes into build history (sans-I/O).

The classic builder records each metadata instruction as a comment made with Go's ``fmt``
verbs, e.g. ``CMD %q`` (a quoted string list), ``SHELL %v`` (a bare list), ``HEALTHCHECK %q``
of a ``*container.HealthConfig`` (``&{["CMD" "true"] "5s" "0s" "0s" '\\x03'}``). These
functions reproduce what Go prints, following the ``fmt`` package documentation ("Printing")
and ``time.Duration.String``; quoting is :mod:`berth.goquote`.
"""

from __future__ import annotations

from collections.abc import Iterable

from berth.goquote import quote, quote_list, quote_rune


def plain_list(items: Iterable[str]) -> str:
    """``%v`` of a ``[]string``: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def _fraction(value: int, digits: int) -> str:
    """``value / 10**digits`` with the fraction's trailing zeros (and a bare point) dropped."""
    whole, frac = divmod(value, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def duration(nanoseconds: int) -> str:
    """``time.Duration.String``: ``0s``, ``1.5ms``, ``5s``, ``1m30s``, ``1h0m0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_fraction(value, 3)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_fraction(value, 6)}ms"
    minutes, rest = divmod(value, 60 * 1_000_000_000)
    text = _fraction(rest, 9) + "s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def healthcheck(test: list[str], interval: int, timeout: int, start_period: int, retries: int) -> str:
    """``%q`` of docker 20.10's ``*HealthConfig``: ``&{[test] "interval" "timeout" "start" 'retries'}``."""
    times = " ".join(quote(duration(value)) for value in (interval, timeout, start_period))
    return f"&{{{quote_list(test)} {times} {quote_rune(retries)}}}"
