"""Network commands: network create, ls, inspect, rm, connect, disconnect, prune (docs: docker CLI
reference, "docker network create" ... "docker network prune"; Engine API v1.41 "Network" endpoints).
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

from berth.cli import output
from berth.cli.commands.volumes import inspect_each, natural_key, parse_filters, parse_map
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

NETWORKS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_TITLES = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
                  "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


class IPAMError(Exception):
    """An ``--subnet``/``--ip-range``/``--gateway``/``--aux-address`` combination docker refuses."""


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _contains(subnet: str, value: str) -> bool:
    """Whether ``value`` (an address or a CIDR, whose address counts) lies in ``subnet``."""
    net = _network(subnet)
    try:
        address = ipaddress.ip_interface(value).ip if "/" in value else ipaddress.ip_address(value)
    except ValueError:
        return False
    return net is not None and address.version == net.version and address in net


def ipam_config(subnets: list[str], ranges: list[str], gateways: list[str],
                aux: dict[str, str]) -> list[dict[str, Any]]:
    """The IPAM ``Config`` list, each range, gateway and aux address matched to the subnet holding it.

    Follows the docker CLI's checks ("docker network create": one range and one gateway per subnet,
    no overlapping subnets). Raises IPAMError with docker's message.
    """
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise IPAMError("every ip-range or gateway must have a corresponding subnet")
    for i, first in enumerate(subnets):
        for second in subnets[i + 1:]:
            a, b = _network(first), _network(second)
            if a is not None and b is not None and a.version == b.version and a.overlaps(b):  # type: ignore[arg-type]
                raise IPAMError("multiple overlapping subnet configuration is not supported")
    configs: list[dict[str, Any]] = [{"Subnet": s} for s in subnets]
    for key, kind, values in (("IPRange", "range", ranges), ("Gateway", "gateway", gateways)):
        for value in values:
            config = next((c for c in configs if _contains(c["Subnet"], value)), None)
            if config is None:
                raise IPAMError(f"no matching subnet for {kind} {value}")
            if key in config:
                plural = "ranges" if kind == "range" else "gateways"
                where = "on" if kind == "range" else "for"
                raise IPAMError(f"cannot configure multiple {plural} ({value}, {config[key]}) {where} "
                                f"the same subnet ({config['Subnet']})")
            config[key] = value
    for name, address in aux.items():
        config = next((c for c in configs if _contains(c["Subnet"], address)), None)
        if config is None:
            raise IPAMError(f"no matching subnet for aux-address {address}")
        config.setdefault("AuxiliaryAddresses", {})[name] = address
    return configs


def go_time_string(rfc3339: str) -> str:
    """An RFC 3339 time as Go's ``time.Time.String()`` prints it: ``2006-01-02 15:04:05.999999999 +0000 UTC``."""
    date, _, clock = rfc3339.partition("T")
    zone = "Z"
    for sign in ("Z", "+", "-"):
        if sign in clock:
            clock, zone = clock.split(sign, 1)[0], sign + clock.split(sign, 1)[1]
            break
    seconds, _, fraction = clock.partition(".")
    fraction = fraction.rstrip("0")
    offset = "+0000 UTC" if zone in ("Z", "+00:00") else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{date} {seconds}{'.' + fraction if fraction else ''} {offset}"


class NetworkRow:
    """One row of ``network ls`` (docker's networkContext fields)."""

    def __init__(self, network: dict[str, Any], trunc: bool) -> None:
        self._n = network
        self._trunc = trunc
        self.Name: str = network.get("Name", "")
        self.Driver: str = network.get("Driver", "")
        self.Scope: str = network.get("Scope", "")

    @property
    def ID(self) -> str:
        nid = self._n.get("Id", "")
        return output.truncate_id(nid) if self._trunc else nid

    @property
    def IPv4(self) -> str:
        return "true" if self._n.get("EnableIPv4") else "false"

    @property
    def IPv6(self) -> str:
        return "true" if self._n.get("EnableIPv6") else "false"

    @property
    def Internal(self) -> str:
        return "true" if self._n.get("Internal") else "false"

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self._n.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:
        return (self._n.get("Labels") or {}).get(name, "")

    @property
    def CreatedAt(self) -> str:
        return go_time_string(self._n.get("Created", "0001-01-01T00:00:00Z"))

    def to_json(self) -> dict[str, str]:
        return {"CreatedAt": self.CreatedAt, "Driver": self.Driver, "ID": self.ID, "IPv4": self.IPv4,
                "IPv6": self.IPv6, "Internal": self.Internal, "Labels": self.Labels, "Name": self.Name,
                "Scope": self.Scope}


def _create_flags(prog: str) -> FlagSet:
    fs = FlagSet(prog, "[OPTIONS] NETWORK", "Create a network", 1, 1)
    fs.add("--attachable", help="Enable manual container attachment")
    fs.add("--aux-address", "list", help="Auxiliary IPv4 or IPv6 addresses used by Network driver", metavar="map")
    fs.add("--config-from", "string", help="The network from which to copy the configuration")
    fs.add("--config-only", help="Create a configuration only network")
    fs.add("-d, --driver", "string", "bridge", help='Driver to manage the Network (default "bridge")')
    fs.add("--gateway", "list", help="IPv4 or IPv6 Gateway for the master subnet", metavar="strings")
    fs.add("--ingress", help="Create swarm routing-mesh network")
    fs.add("--internal", help="Restrict external access to the network")
    fs.add("--ip-range", "list", help="Allocate container ip from a sub-range", metavar="strings")
    fs.add("--ipam-driver", "string", "default", help='IP Address Management Driver (default "default")')
    fs.add("--ipam-opt", "list", help="Set IPAM driver specific options", metavar="map")
    fs.add("--ipv6", help="Enable or disable IPv6 networking")
    fs.add("--label", "list", help="Set metadata on a network", metavar="list")
    fs.add("-o, --opt", "list", help="Set driver specific options", metavar="map")
    fs.add("--scope", "string", help="Control the network's scope")
    fs.add("--subnet", "list", help="Subnet in CIDR format that represents a network segment", metavar="strings")
    return fs


def create(ctx: Any, argv: list[str], prog: str) -> int:
    """``network create``: POST /networks/create; prints the new network's ID."""
    fs = _create_flags(prog)
    args, (name,) = fs.parse_or_exit(argv)
    try:
        configs = ipam_config(args.subnet, args.ip_range, args.gateway,
                              parse_map(args.aux_address))
    except IPAMError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    body: dict[str, Any] = {
        "Name": name, "CheckDuplicate": True, "Driver": args.driver, "Scope": args.scope,
        "IPAM": {"Driver": args.ipam_driver, "Options": parse_map(args.ipam_opt), "Config": configs},
        "Internal": args.internal, "Attachable": args.attachable, "Ingress": args.ingress,
        "ConfigOnly": args.config_only, "ConfigFrom": {"Network": args.config_from} if args.config_from else None,
        "Options": parse_map(args.opt), "Labels": parse_map(args.label),
    }
    if "ipv6" in args.explicit:
        body["EnableIPv6"] = args.ipv6
    created = ctx.client.post("/networks/create", json_body=body)
    if created.get("Warning"):
        sys.stderr.write(f"{created['Warning']}\n")
    print(created.get("Id", ""))
    return 0


def ls(ctx: Any, argv: list[str], prog: str) -> int:
    """``network ls``: GET /networks, rows in natural name order."""
    fs = FlagSet(prog, "[OPTIONS]", "List networks", 0, 0)
    fs.add("-f, --filter", "list", help="Provide filter values (e.g. \"driver=bridge\")", metavar="filter")
    fs.add("--format", "string", help="Format output using a custom template", metavar="string")
    fs.add("--no-trunc", help="Do not truncate the output")
    fs.add("-q, --quiet", help="Only display network IDs")
    args, _ = fs.parse_or_exit(argv)
    networks = ctx.client.get("/networks", {"filters": parse_filters(fs, args.filter)})
    rows = sorted((NetworkRow(n, not args.no_trunc) for n in networks or []), key=lambda r: natural_key(r.Name))
    if args.quiet and args.format.strip() in ("", "table"):
        sys.stdout.write("".join(row.ID + "\n" for row in rows))
        return 0
    return output.print_rendered(args.format, rows, NETWORKS_TABLE, NETWORK_TITLES)


def inspect(ctx: Any, argv: list[str], prog: str) -> int:
    """``network inspect``: GET /networks/{id} for each name."""
    fs = FlagSet(prog, "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", 1)
    fs.add("-f, --format", "string", help="Format output using a custom template")
    fs.add("-v, --verbose", help="Verbose output for diagnostics")
    args, names = fs.parse_or_exit(argv)
    params = {"verbose": True} if args.verbose else None
    return inspect_each(names, args.format, lambda name: ctx.client.get(f"/networks/{path_quote(name)}", params))


def rm(ctx: Any, argv: list[str], prog: str) -> int:
    """``network rm``: DELETE /networks/{id}; errors are printed as they come, then docker's
    ``exit status 1`` line. With ``-f`` a missing network is not an error."""
    fs = FlagSet(prog, "NETWORK [NETWORK...]", "Remove one or more networks", 1)
    fs.add("-f, --force", help="Do not error if the network does not exist")
    args, names = fs.parse_or_exit(argv)
    status = 0
    for name in names:
        try:
            ctx.client.delete(f"/networks/{path_quote(name)}")
        except APIError as exc:
            if args.force and exc.status == 404:
                continue
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            status = 1
            continue
        print(name)
    if status:
        sys.stderr.write(f"exit status {status}\n")
    return status


def connect(ctx: Any, argv: list[str], prog: str) -> int:
    """``network connect``: POST /networks/{id}/connect with an EndpointConfig."""
    fs = FlagSet(prog, "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network", 2, 2)
    fs.add("--alias", "list", help="Add network-scoped alias for the container", metavar="strings")
    fs.add("--driver-opt", "list", help="driver options for the network", metavar="strings")
    fs.add("--gw-priority", "int", help="Highest gw-priority provides the default gateway.")
    fs.add("--ip", "string", help="IPv4 address (e.g., \"172.30.100.104\")")
    fs.add("--ip6", "string", help="IPv6 address (e.g., \"2001:db8::33\")")
    fs.add("--link", "list", help="Add link to another container", metavar="list")
    fs.add("--link-local-ip", "list", help="Add a link-local address for the container", metavar="strings")
    args, (network, container) = fs.parse_or_exit(argv)
    endpoint: dict[str, Any] = {"Aliases": args.alias or None, "Links": args.link or None,
                                "DriverOpts": parse_map(args.driver_opt)}
    if args.ip or args.ip6 or args.link_local_ip:
        endpoint["IPAMConfig"] = {"IPv4Address": args.ip, "IPv6Address": args.ip6,
                                  "LinkLocalIPs": args.link_local_ip or None}
    if args.gw_priority:
        endpoint["GwPriority"] = args.gw_priority
    ctx.client.post(f"/networks/{path_quote(network)}/connect",
                    json_body={"Container": container, "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: Any, argv: list[str], prog: str) -> int:
    """``network disconnect``: POST /networks/{id}/disconnect."""
    fs = FlagSet(prog, "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network", 2, 2)
    fs.add("-f, --force", help="Force the container to disconnect from a network")
    args, (network, container) = fs.parse_or_exit(argv)
    ctx.client.post(f"/networks/{path_quote(network)}/disconnect",
                    json_body={"Container": container, "Force": args.force})
    return 0


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    """``network prune``: POST /networks/prune after docker's prompt; lists the deleted networks."""
    fs = FlagSet(prog, "[OPTIONS]", "Remove all unused networks", 0, 0)
    fs.add("--filter", "list", help='Provide filter values (e.g. "until=<timestamp>")', metavar="filter")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    args, _ = fs.parse_or_exit(argv)
    filters = parse_filters(fs, args.filter)
    from berth.cli.commands.images import confirm
    if not args.force and not confirm(
            "WARNING! This will remove all custom networks not used by at least one container."):
        return 0
    report = ctx.client.post("/networks/prune", {"filters": filters}) or {}
    sys.stdout.write(deleted_networks(report))
    return 0


def deleted_networks(report: dict[str, Any]) -> str:
    """The ``Deleted Networks:`` section of a ``POST /networks/prune`` answer (names, one a line,
    then a blank line); ``""`` when none was deleted."""
    deleted = report.get("NetworksDeleted") or []
    return "Deleted Networks:\n" + "".join(name + "\n" for name in deleted) + "\n" if deleted else ""
