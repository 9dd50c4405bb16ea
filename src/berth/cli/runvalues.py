"""Value syntaxes of ``run``/``create`` (and ``update``, ``build``) flags, as docker's ``opts`` package
and the go-units rules accept them: sizes, CPUs, durations, ulimits, restart policies, env and label
files, and the checks of ``--dns``, ``--add-host``, ``--link``, ``--mac-address`` and ``--sysctl``.

Errors are :class:`OptionError`, with docker's wording (docker CLI reference "docker run"; go-units
``RAMInBytes``/``ParseUlimit``; Go ``time.ParseDuration``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from berth.goquote import quote as go_quote


class OptionError(Exception):
    """A bad ``run``/``create`` option.

    With ``flag`` set it is a flag-value error, printed ``invalid argument "VALUE" for "FLAG" flag: MSG``;
    otherwise a parse error, printed ``berth: MSG.``. Both are followed by ``See 'PROG --help'.`` and exit
    125 (docker CLI: pflag errors and ``reportError``).
    """

    def __init__(self, message: str, flag: str = "", value: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.flag = flag
        self.value = value

    def render(self, binary: str = "berth") -> str:
        """The first line docker prints for this error."""
        if self.flag:
            return f'invalid argument "{self.value}" for "{self.flag}" flag: {self.message}'
        return f"{binary}: {self.message.rstrip('.')}."


def bad_flag(flag: str, value: str, message: str) -> OptionError:
    """A flag-value error for ``flag`` (its label as docker prints it, ``-m, --memory``)."""
    return OptionError(message, flag, value)


def go_int(flag: str, value: str) -> int:
    """Go's ``strconv.ParseInt(value, 10, 64)`` with its error text, as a flag-value error of ``flag``."""
    if re.fullmatch(r"[+-]?\d+", value):
        number = int(value)
        if -(1 << 63) <= number < (1 << 63):
            return number
        raise bad_flag(flag, value, f'strconv.ParseInt: parsing "{value}": value out of range')
    raise bad_flag(flag, value, f'strconv.ParseInt: parsing "{value}": invalid syntax')


def split_kv(text: str, sep: str = "=") -> tuple[str, str]:
    """``k=v`` -> ``(k, v)``; a bare ``k`` -> ``(k, "")`` (docker's ``ConvertKVStringsToMap``)."""
    key, _, value = text.partition(sep)
    return key, value


_SIZE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``512k``, ``32m``, ``1.5g``, ``1024`` (binary multiples) -> bytes.

    Raises ValueError ``invalid size: 'TEXT'``.
    """
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    try:
        number = float(match.group(1))
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{match.group(1)}": invalid syntax') from None
    power = " kmgtp".index((match.group(2) or " ").lower())
    return int(number * (1024 ** power))


def memory_bytes(flag: str, value: str, swap: bool = False) -> int:
    """A ``bytes`` flag value (0 when not given); ``swap`` accepts ``-1`` (unlimited, ``--memory-swap``)."""
    if not value:
        return 0
    if swap and value == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError as exc:
        raise bad_flag(flag, value, str(exc)) from None


def nano_cpus(value: str) -> int:
    """``--cpus`` (a rational number such as ``1.5`` or ``3/2``) in billionths of a CPU."""
    if not value:
        return 0
    from fractions import Fraction
    try:
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/\d+)?", value):
            raise ValueError
        nanos = Fraction(value) * 1_000_000_000
    except (ValueError, ZeroDivisionError):
        raise bad_flag("--cpus", value, f"failed to parse {value} as a rational number") from None
    if nanos.denominator != 1:
        raise bad_flag("--cpus", value, "value is too precise")
    return int(nanos)


def duration_ns(flag: str, value: str) -> int:
    """A Go duration flag (``1m30s``, ``500ms``) in nanoseconds; 0 when not given. Raises
    OptionError (a flag-value error of ``flag`` with Go's ``time.ParseDuration`` text)."""
    if not value:
        return 0
    from berth.timeutil import parse_go_duration

    try:
        return parse_go_duration(value)
    except ValueError as exc:
        raise bad_flag(flag, value, str(exc)) from None


_ULIMIT_NAMES = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                 "rss", "rtprio", "rttime", "sigpending", "stack"}


def ulimit(spec: str) -> dict[str, Any]:
    """``--ulimit name=soft[:hard]`` -> ``{"Name", "Hard", "Soft"}`` (go-units ``ParseUlimit``)."""
    name, eq, limits = spec.partition("=")
    if not eq:
        raise bad_flag("--ulimit", spec, f"invalid ulimit argument: {spec}")
    if name not in _ULIMIT_NAMES:
        raise bad_flag("--ulimit", spec, f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = limits.partition(":")
    try:
        soft = go_int("--ulimit", soft_text)
        hard = go_int("--ulimit", hard_text) if colon else soft
    except OptionError as exc:
        raise bad_flag("--ulimit", spec, exc.message) from None
    if soft > hard:
        raise bad_flag("--ulimit", spec, f"ulimit soft limit must be less than or equal to hard limit: "
                                         f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def restart_policy(spec: str) -> dict[str, Any]:
    """``--restart no|always|unless-stopped|on-failure[:N]`` -> ``RestartPolicy`` (names checked by the daemon)."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise OptionError("invalid restart policy format")
    count = 0
    if len(parts) == 2:
        if not re.fullmatch(r"[+-]?\d+", parts[1]):
            raise OptionError("maximum retry count must be an integer")
        count = int(parts[1])
    return {"Name": parts[0], "MaximumRetryCount": count}


def _key_value_file(path: str, environ: Mapping[str, str] | None) -> list[str]:
    """docker's env-file syntax: ``NAME=value`` kept verbatim, ``#`` comments and blank lines skipped,
    a bare ``NAME`` taken from ``environ`` (dropped when unset or when ``environ`` is None)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OptionError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    lines: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.rstrip(b"\r").decode("utf-8").lstrip()
        except UnicodeDecodeError:
            raise OptionError(f"env file {path} contains invalid utf8 bytes at line {number}") from None
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        name = name.lstrip(" \t")
        if any(c in name for c in " \t\n\v\f\r"):
            raise OptionError(f"poorly formatted environment: variable '{name}' contains whitespaces")
        if not name:
            raise OptionError(f"poorly formatted environment: no variable name on line '{line}'")
        if eq:
            lines.append(f"{name}={value}")
        elif environ is not None and line.strip() in environ:
            lines.append(f"{line.strip()}={environ[line.strip()]}")
    return lines


def env_values(files: list[str], flags: list[str], environ: Mapping[str, str]) -> list[str] | None:
    """``Config.Env``: ``--env-file`` lines then ``-e`` values (``-e NAME`` takes NAME from ``environ``)."""
    given = []
    for value in flags:
        name, eq, _ = value.partition("=")
        if not name:
            raise bad_flag("-e, --env", value, f"invalid environment variable: {value}")
        given.append(value if eq or name not in environ else f"{name}={environ[name]}")
    if not files and not given:
        return None
    return [line for path in files for line in _key_value_file(path, environ)] + given


def label_values(files: list[str], flags: list[str]) -> dict[str, str]:
    """``Config.Labels``: ``--label-file`` lines then ``-l`` values, later ones winning; sorted like a Go map."""
    for value in flags:
        if not value.partition("=")[0].strip():
            raise bad_flag("-l, --label", value, f"invalid label '{value}': empty name")
    pairs = [split_kv(line) for path in files for line in _key_value_file(path, None)]
    return dict(sorted(dict(pairs + [split_kv(v) for v in flags]).items()))


def _is_ip(text: str) -> str | None:
    import ipaddress
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def validate_dns(value: str) -> str:
    """``--dns``: an IP address, normalised as Go prints it."""
    ip = _is_ip(value)
    if ip is None:
        raise bad_flag("--dns", value, f"{value} is not an ip address")
    return ip


_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def validate_dns_search(value: str) -> str:
    """``--dns-search``: a domain name, or ``.`` for none."""
    trimmed = value.strip(" ")
    if trimmed == "." or (_DOMAIN.fullmatch(trimmed) and len(trimmed) <= 255):
        return trimmed
    raise bad_flag("--dns-search", value, f"{trimmed} is not a valid domain")


def validate_add_host(value: str) -> str:
    """``--add-host name:ip`` (``ip`` may be ``host-gateway``)."""
    name, colon, ip = value.partition(":")
    if not colon or not name:
        raise bad_flag("--add-host", value, f"bad format for add-host: {go_quote(value)}")
    if ip != "host-gateway" and _is_ip(ip) is None:
        raise bad_flag("--add-host", value, f"invalid IP address in add-host: {go_quote(ip)}")
    return value


def validate_link(value: str) -> str:
    """``--link name[:alias]``."""
    if not value:
        raise bad_flag("--link", value, "empty string specified for links")
    if value.count(":") > 1:
        raise bad_flag("--link", value, f"bad format for links: {value}")
    return value


def validate_mac(value: str) -> str:
    """``--mac-address``: Go ``net.ParseMAC`` forms (6, 8 or 20 octets, ``:``/``-`` or dotted)."""
    octet = r"[0-9A-Fa-f]{2}"
    for count in (6, 8, 20):
        for sep in (":", "-"):
            if re.fullmatch(sep.join([octet] * count), value):
                return value
        if re.fullmatch(r"\.".join([r"[0-9A-Fa-f]{4}"] * (count // 2)), value):
            return value
    raise OptionError(f"{value} is not a valid mac address")


_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
            "kernel.shmmni", "kernel.shm_rmid_forced"}


def validate_sysctl(value: str) -> str:
    """``--sysctl name=value`` for the namespaced sysctls docker allows (``net.*``, ``fs.mqueue.*``, IPC)."""
    name = value.split("=")[0]
    if "=" in value and (name in _SYSCTLS or name.startswith(("net.", "fs.mqueue."))):
        return value
    raise bad_flag("--sysctl", value, f"sysctl '{value}' is not whitelisted")
