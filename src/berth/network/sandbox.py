"""A container's network configuration read from its record (pure).

``HostConfig.NetworkMode`` ("docker run --network": ``bridge``/``default``, ``host``, ``none``,
``container:<name|id>`` or a network name/ID), ``NetworkingConfig.EndpointsConfig`` (per network:
``IPAMConfig.IPv4Address``, ``Aliases``, ``Links``, ``MacAddress``), ``HostConfig.Links`` and the
host's own resolv.conf, as the Engine API "ContainerCreate" and "docker run" reference describe.
"""

from __future__ import annotations

import os
import re
from ipaddress import IPv4Address
from typing import Any

from berth.containers.model import Container
from berth.errors import InvalidParameter
from berth.network.hostsfile import ResolvConf, parse_resolv_conf
from berth.network.ipam import parse_ipv4_address

HOST_RESOLV_CONF = "/etc/resolv.conf"
SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"
HOST_HOSTS = "/etc/hosts"
CONTAINER_PREFIX = "container:"
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def network_mode(container: Container) -> str:
    """``HostConfig.NetworkMode`` with docker's ``default`` (and empty) spelled ``bridge``."""
    mode = str(container.host_config.get("NetworkMode") or "default")
    return "bridge" if mode == "default" else mode


def shared_with(container: Container) -> str | None:
    """The name/ID in ``--network container:<x>``, or None."""
    mode = network_mode(container)
    return mode[len(CONTAINER_PREFIX):] if mode.startswith(CONTAINER_PREFIX) else None


def check_mode_conflicts(container: Container, publishes: bool) -> None:
    """Refuse options that make no sense with ``--network container:X`` or ``host``, in dockerd's
    order and wording (runconfig ``validateNetContainerMode``). ``publishes``: ports are published.
    A hostname counts as given unless it is the short ID berth filled in. Raises InvalidParameter."""
    mode = network_mode(container)
    shared = mode.startswith(CONTAINER_PREFIX)
    hc = container.host_config
    if shared and not mode[len(CONTAINER_PREFIX):]:
        raise InvalidParameter("Invalid network mode: invalid container format container:<name|id>")
    conflicts = [
        (shared and container.config.get("Hostname") not in (None, "", container.short_id),
         "conflicting options: hostname and the network mode"),
        (shared and bool(string_list(hc.get("Links"))),
         "conflicting options: container type network can't be used with links. This would result in undefined "
         "behavior"),
        (shared and bool(string_list(hc.get("Dns"))), "conflicting options: dns and the network mode"),
        (shared and bool(string_list(hc.get("ExtraHosts"))),
         "conflicting options: custom host-to-IP mapping and the network mode"),
        ((shared or mode == "host") and bool(container.config.get("MacAddress")),
         "conflicting options: mac-address and the network mode"),
        (shared and publishes, "conflicting options: port publishing and the container type network mode"),
    ]
    for conflict, message in conflicts:
        if conflict:
            raise InvalidParameter(message)


def mode_warnings(container: Container) -> list[str]:
    """Create-time warnings dockerd gives for the network mode (``docker run`` prints them)."""
    if network_mode(container) == "host" and container.host_config.get("PortBindings"):
        return ["Published ports are discarded when using host network mode"]
    return []


def endpoints_config(container: Container) -> dict[str, dict[str, Any]]:
    """``NetworkingConfig.EndpointsConfig`` (network name -> EndpointSettings), created when missing
    so callers may add to it."""
    config = container.networking_config
    if not isinstance(config.get("EndpointsConfig"), dict):
        config["EndpointsConfig"] = {}
    endpoints: dict[str, dict[str, Any]] = config["EndpointsConfig"]
    for name, value in list(endpoints.items()):
        if not isinstance(value, dict):
            endpoints[name] = {}
    return endpoints


def requested_ip(config: dict[str, Any]) -> IPv4Address | None:
    """``IPAMConfig.IPv4Address`` of an endpoint config ("docker run --ip"), or None.
    Raises InvalidParameter for something that is no IPv4 address."""
    text = str((config.get("IPAMConfig") or {}).get("IPv4Address") or "")
    return parse_ipv4_address(text, "IPv4 address") if text else None


def parse_mac(text: str) -> str:
    """Normalise a ``--mac-address`` value to lower-case ``aa:bb:cc:dd:ee:ff``.

    Raises InvalidParameter with dockerd's ``address X: invalid MAC address``.
    """
    if not _MAC.match(text):
        raise InvalidParameter(f"address {text}: invalid MAC address")
    return text.lower()


def parse_link(spec: str) -> tuple[str, str]:
    """``--link`` value -> ``(container name, alias)``: ``"db:alias"``, ``"db"`` (alias = name) and
    dockerd's stored form ``"/db:/web/alias"`` all work. Raises InvalidParameter when empty."""
    name, _, alias = spec.partition(":")
    name = name.strip().lstrip("/")
    alias = alias.strip().rsplit("/", 1)[-1] or name
    if not name:
        raise InvalidParameter(f"invalid link format: {spec!r}")
    return name, alias


def hostname(container: Container) -> str:
    """``Config.Hostname``, or the short ID docker uses when none was given."""
    return str(container.config.get("Hostname") or container.short_id)


def dns_names(container: Container, config: dict[str, Any]) -> list[str]:
    """The names a user network's DNS answers for this container: name, aliases (short ID
    included, as dockerd adds it) and hostname, each once."""
    names = [container.name, *(config.get("Aliases") or []), container.short_id, hostname(container)]
    unique: list[str] = []
    for name in names:
        if name and name.lower() not in (n.lower() for n in unique):
            unique.append(str(name))
    return unique


def string_list(value: Any) -> list[str]:
    """A JSON list of strings (``Dns``, ``DnsSearch``, ``ExtraHosts``...); None is empty."""
    return [str(item) for item in value or []]


def read_host_resolv_conf(path: str = HOST_RESOLV_CONF) -> ResolvConf:
    """The host's resolv.conf, parsed. When it only names the systemd-resolved stub (127.0.0.53)
    the real upstream list from systemd-resolved is used instead, as dockerd does."""
    conf = parse_resolv_conf(_read(path))
    stub_only = conf.nameservers and all(server.startswith("127.0.0.53") for server in conf.nameservers)
    if path == HOST_RESOLV_CONF and stub_only and os.path.exists(SYSTEMD_RESOLV_CONF):
        conf = parse_resolv_conf(_read(SYSTEMD_RESOLV_CONF))
    return conf


def read_host_hosts(path: str = HOST_HOSTS) -> str:
    """The host's /etc/hosts text (``--network host`` containers get a copy)."""
    text = _read(path)
    return text if not text or text.endswith("\n") else text + "\n"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""
