"""Render a container's /etc/hosts and /etc/resolv.conf (pure: text in, text out).

Contents follow what docker writes (docker run reference, "Network settings": ``--add-host``,
``--link``, ``--dns``, ``--dns-search``, ``--dns-option``; "Container networking", "DNS services"):

* /etc/hosts: the localhost and IPv6 lines, then ``--add-host`` and legacy ``--link`` entries,
  then the container's own ``IP  [fqdn] hostname`` line(s);
* resolv.conf on a user network: ``nameserver <gateway>`` (berth serves DNS on the gateway) plus
  the host's search domains and options; on the default bridge: the host's nameservers minus
  loopback ones (docker falls back to 8.8.8.8 and 8.8.4.4 when none are left); ``--dns``,
  ``--dns-search`` and ``--dns-option`` replace the corresponding host values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address

from berth.errors import InvalidParameter
from berth.network.model import HostEntry

LOCALHOST_LINES = ("127.0.0.1\tlocalhost",)
IPV6_LINES = (
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
HOST_GATEWAY = "host-gateway"


def parse_extra_host(spec: str) -> HostEntry:
    """Parse one ``--add-host`` value ``name:ip`` (or ``name=ip``) into a HostEntry.

    The split is at the first ``=`` or ``:``, so ``"h:::1"`` maps ``h`` to ``::1``. The special
    value ``host-gateway`` is kept for the daemon to substitute. Raises InvalidParameter with the
    docker CLI's wording ``invalid IP address in add-host: "X"`` or ``bad format for add-host: "X"``.
    """
    sep = "=" if "=" in spec else ":"
    name, found, ip = spec.partition(sep)
    if not found or not name or not ip:
        raise InvalidParameter(f'bad format for add-host: "{spec}"')
    ip = ip.strip("[]")
    if ip != HOST_GATEWAY:
        try:
            ip_address(ip)
        except ValueError as exc:
            raise InvalidParameter(f'invalid IP address in add-host: "{ip}"') from exc
    return HostEntry(ip, (name,))


def link_entry(ip: str, alias: str, hostname: str, name: str) -> HostEntry:
    """/etc/hosts entry for ``--link name:alias``: the alias, the linked container's hostname and,
    when it differs from the alias, its name (docker's legacy links)."""
    names = [alias, hostname]
    if name != alias:
        names.append(name)
    return HostEntry(ip, tuple(names))


def render_hosts(
    hostname: str,
    addresses: Sequence[str],
    domainname: str = "",
    extra_hosts: Iterable[HostEntry] = (),
    links: Iterable[HostEntry] = (),
    ipv6: bool = True,
) -> str:
    """The text of a container's /etc/hosts.

    ``addresses``: the container's own IPs (empty for ``--network none``, which gets no own line);
    ``domainname``: ``--domainname``, giving ``IP\\thostname.domain hostname``; ``ipv6=False``
    leaves out the IPv6 lines, as docker does for containers with IPv6 disabled.
    """
    lines = list(LOCALHOST_LINES)
    if ipv6:
        lines.extend(IPV6_LINES)
    for entry in (*extra_hosts, *links):
        lines.append(f"{entry.ip}\t{' '.join(entry.names)}")
    own = f"{hostname}.{domainname}\t{hostname}" if domainname else hostname
    for address in addresses:
        lines.append(f"{address}\t{own}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ResolvConf:
    """The parts of resolv.conf(5) docker manages."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    other: tuple[str, ...] = field(default=(), compare=False)

    def render(self) -> str:
        """resolv.conf text: ``search``, ``nameserver`` lines, ``options``, then unknown lines kept."""
        lines: list[str] = []
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines.extend(f"nameserver {server}" for server in self.nameservers)
        if self.options:
            lines.append("options " + " ".join(self.options))
        lines.extend(self.other)
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> ResolvConf:
    """Parse resolv.conf text. The last ``search``/``domain`` line wins (resolv.conf(5));
    ``options`` lines accumulate; comments and blank lines are dropped; other lines are kept."""
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    other: list[str] = []
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        keyword, args = words[0], words[1:]
        if keyword == "nameserver" and args:
            nameservers.append(args[0])
        elif keyword in ("search", "domain"):
            search = args
        elif keyword == "options":
            options.extend(args)
        else:
            other.append(raw.strip())
    return ResolvConf(tuple(nameservers), tuple(search), tuple(options), tuple(other))


def _is_loopback(server: str) -> bool:
    try:
        return ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return False


def _is_ipv6(server: str) -> bool:
    return ":" in server


def container_resolv_conf(
    host: ResolvConf,
    gateway: str | None = None,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
    ipv6: bool = False,
) -> ResolvConf:
    """resolv.conf for a container, from the host's parsed resolv.conf.

    ``gateway``: the user network's gateway, where berth's DNS server answers (None on the
    default bridge). On a user network ``dns`` does not change the file (those servers are the DNS
    server's upstreams, as with docker's embedded DNS); on the default bridge it replaces the
    host's nameservers, which otherwise are filtered of loopback (and, without ``ipv6``, IPv6)
    servers, with docker's 8.8.8.8/8.8.4.4 fallback. ``dns_search == ["."]`` means no search line.
    Like docker with its embedded DNS, a user network gets ``options ndots:0`` unless ndots is set.
    """
    if gateway is not None:
        nameservers: tuple[str, ...] = (gateway,)
    elif dns:
        nameservers = tuple(dns)
    else:
        kept = [s for s in host.nameservers if not _is_loopback(s) and (ipv6 or not _is_ipv6(s))]
        nameservers = tuple(kept) or FALLBACK_NAMESERVERS
    search = tuple(dns_search) if dns_search else host.search
    if search == (".",):
        search = ()
    options = tuple(dns_options) if dns_options else host.options
    if gateway is not None and not any(option.startswith("ndots:") for option in options):
        options += ("ndots:0",)
    return ResolvConf(nameservers, search, options)
