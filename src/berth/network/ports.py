"""Published ports as data (pure): ``HostConfig.PortBindings``/``PublishAllPorts`` and
``Config.ExposedPorts`` turned into bind requests, and the resulting mappings turned into the
``NetworkSettings.Ports`` shape.

Shapes follow the Engine API "ContainerCreate" (``PortMap``: ``{"80/tcp": [{"HostIp": "",
"HostPort": "8080"}]}``) and "docker run --publish": an empty HostPort asks for an ephemeral port,
``"8000-8010"`` for the first free one of that range, an empty HostIp for every address, which
dockerd 20.10 shows as two bindings (``0.0.0.0`` and ``::``) sharing one port number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from berth.errors import InvalidParameter
from berth.network.model import PortMapping

PROTOCOLS = ("tcp", "udp")
ALL_IPV4 = "0.0.0.0"
ALL_IPV6 = "::"


@dataclass(frozen=True)
class PortRequest:
    """One host binding to make: ``host_ip`` "" means every address (IPv4 and, when the host has
    it, IPv6); ``host_ports`` is the inclusive range to choose from, ``(0, 0)`` for ephemeral."""

    proto: str
    container_port: int
    host_ip: str = ""
    host_ports: tuple[int, int] = (0, 0)

    @property
    def ephemeral(self) -> bool:
        """True when any free port will do (``-p 80``, ``-P``)."""
        return self.host_ports == (0, 0)


def _port_number(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise InvalidParameter(f'invalid port specification: "{spec}"')
    return int(text)


def parse_port_key(key: str) -> tuple[int, str]:
    """``"80/tcp"`` -> ``(80, "tcp")``; a missing protocol means tcp (docker's ``nat.Port``).

    Raises InvalidParameter with dockerd's ``invalid port specification: "X"`` for a bad number and
    ``invalid proto: X`` for a protocol the userland proxy cannot carry (sctp included).
    """
    number, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    port = _port_number(number, number)
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    return port, proto


def parse_host_ports(text: str) -> tuple[int, int]:
    """``""`` -> ``(0, 0)``; ``"8080"`` -> ``(8080, 8080)``; ``"8000-8010"`` -> ``(8000, 8010)``;
    ``"0"`` -> ``(0, 0)``: dockerd takes host port 0 (``-p 0:80``) as "any free port", like an
    empty one, and keeps ``"0"`` in ``HostConfig.PortBindings``.

    Raises InvalidParameter ``invalid port specification: "X"``.
    """
    text = text.strip()
    if not text:
        return 0, 0
    first, sep, last = text.partition("-")
    if not sep and first.isdigit() and int(first) == 0:
        return 0, 0
    start = _port_number(first, text)
    end = _port_number(last, text) if sep else start
    if end < start:
        raise InvalidParameter(f'invalid port specification: "{text}"')
    return start, end


def _check_host_ip(host_ip: str) -> str:
    host_ip = host_ip.strip().strip("[]")
    if host_ip:
        try:
            ip_address(host_ip)
        except ValueError as exc:
            raise InvalidParameter(f"invalid host IP address: {host_ip}") from exc
    return host_ip


def exposed_ports(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> list[tuple[int, str]]:
    """Every port the container exposes: ``Config.ExposedPorts`` plus the keys of
    ``HostConfig.PortBindings`` (docker adds those to the exposed set), sorted as docker prints
    them (by ``"port/proto"`` text). Raises InvalidParameter for a malformed key."""
    keys = set((config.get("ExposedPorts") or {}).keys()) | set((host_config.get("PortBindings") or {}).keys())
    parsed = {parse_port_key(key) for key in keys}
    return sorted(parsed, key=port_key)


def port_key(port: tuple[int, str]) -> str:
    """``(80, "tcp")`` -> ``"80/tcp"``."""
    return f"{port[0]}/{port[1]}"


def port_requests(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> list[PortRequest]:
    """The bindings a container start must make, in docker's order (by port key, then as listed).

    ``PortBindings`` entries bind what they say; with ``PublishAllPorts`` every other exposed port
    gets an ephemeral port on every address ("docker run -P"). Raises InvalidParameter for bad
    ports, protocols or host addresses (dockerd's wording).
    """
    bindings: dict[tuple[int, str], list[PortRequest]] = {}
    for key, entries in (host_config.get("PortBindings") or {}).items():
        port, proto = parse_port_key(key)
        for entry in entries or [{}]:
            entry = entry or {}
            request = PortRequest(proto, port, _check_host_ip(str(entry.get("HostIp") or "")),
                                  parse_host_ports(str(entry.get("HostPort") or "")))
            bindings.setdefault((port, proto), []).append(request)
    if host_config.get("PublishAllPorts"):
        for port, proto in exposed_ports(config, host_config):
            bindings.setdefault((port, proto), [PortRequest(proto, port)])
    return [request for key in sorted(bindings, key=port_key) for request in bindings[key]]


def ports_view(exposed: Iterable[tuple[int, str]], mappings: Iterable[PortMapping]) -> dict[str, Any]:
    """``NetworkSettings.Ports``: every exposed port, with its host bindings or ``None``.

    ``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
    "99/tcp": None}`` (Engine API "PortMap"; keys sorted as Go's encoder writes map keys).
    """
    view: dict[str, Any] = {port_key(port): None for port in exposed}
    for mapping in mappings:
        key = port_key((mapping.container_port, mapping.proto))
        entries = view.get(key) or []
        entries.append({"HostIp": mapping.host_ip, "HostPort": str(mapping.host_port)})
        view[key] = entries
    return {key: view[key] for key in sorted(view)}


def mappings_from_view(ports: Mapping[str, Any] | None) -> list[PortMapping]:
    """The mappings recorded in a ``NetworkSettings.Ports`` value (to re-create proxies after a
    daemon restart). Entries that do not parse are skipped: they cannot be bound anyway."""
    found: list[PortMapping] = []
    for key, entries in (ports or {}).items():
        try:
            port, proto = parse_port_key(key)
        except InvalidParameter:
            continue
        for entry in entries or []:
            host_port = str(entry.get("HostPort") or "")
            if host_port.isdigit() and entry.get("HostIp"):
                found.append(PortMapping(proto, str(entry["HostIp"]), int(host_port), port))
    return found


def display_address(host_ip: str, port: int) -> str:
    """``0.0.0.0:8080`` / ``[::]:8080`` as dockerd prints a host binding in errors."""
    return f"[{host_ip}]:{port}" if ":" in host_ip else f"{host_ip}:{port}"
