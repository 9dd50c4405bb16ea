"""``ps``: docker's container table, its ``--format`` fields and the PORTS column.

Docs: docker CLI reference "docker ps" (columns, ``--format`` fields, filters); rows render through
:func:`berth.cli.output.render` as docker's formatter does.
"""

from __future__ import annotations

import sys
from typing import Any

from berth.cli import output
from berth.cli.commands.containers import print_error
from berth.cli.commands.images import filters_param, go_time, since
from berth.cli.flags import FlagSet

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_TITLES = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
             "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
             "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
             "Networks": "NETWORKS"}


def display_ports(ports: list[dict[str, Any]]) -> str:
    """The PORTS column as docker 20.10 writes it: unpublished ports and same-number mappings grouped
    into ranges per address and protocol (``8000-8002/tcp``, ``0.0.0.0:80->80/tcp``), then the other
    mappings (``0.0.0.0:49153->80/tcp``, ``:::49153->80/tcp``), all sorted by private port."""
    ordered = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0),
                                           p.get("Type", "")))
    groups: dict[str, list[int]] = {}  # key -> [first, last]; insertion order is display order
    result: list[str] = []
    mappings: list[str] = []
    for item in ordered:
        private, kind, ip = item.get("PrivatePort", 0), item.get("Type", ""), item.get("IP", "")
        key = kind
        if ip:
            if item.get("PublicPort", 0) != private:
                mappings.append(f"{ip}:{item.get('PublicPort', 0)}->{private}/{kind}")
                continue
            key = f"{ip}/{kind}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            group[0] = group[1] = private
    result.extend(_port_group(key, *group) for key, group in groups.items())
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    span = str(first) if first == last else f"{first}-{last}"
    return f"{ip}:{span}->{span}/{kind}" if ip else f"{span}/{kind}"


class ContainerRow:
    """One row of ``ps`` (the fields of docker's container formatter context)."""

    def __init__(self, summary: dict[str, Any], trunc: bool) -> None:
        self._s = summary
        self._trunc = trunc

    @property
    def ID(self) -> str:
        return output.truncate_id(self._s["Id"]) if self._trunc else self._s["Id"]

    @property
    def Names(self) -> str:
        names = [n[1:] if n.startswith("/") else n for n in self._s.get("Names") or []]
        if self._trunc:  # link aliases (other/alias) only with --no-trunc
            names = next(([n] for n in names if "/" not in n), names)
        return ",".join(names)

    @property
    def Image(self) -> str:
        image = self._s.get("Image") or ""
        if not image:
            return "<no image>"
        if not self._trunc:
            return image
        short = output.truncate_id(self._s.get("ImageID", ""))
        if short == output.truncate_id(image):
            return short
        from berth.errors import InvalidParameter
        from berth.images import reference as refs
        try:
            ref = refs.parse_normalized_named(image)
        except InvalidParameter:
            return image
        return f"{ref.familiar_name}:{ref.tag}" if ref.tag else ref.familiar_name

    @property
    def Command(self) -> str:
        from berth.goquote import quote as go_quote
        command = self._s.get("Command", "")
        return go_quote(output.ellipsis(command, 20) if self._trunc else command)

    @property
    def CreatedAt(self) -> str:
        return go_time(self._s.get("Created", 0))

    @property
    def RunningFor(self) -> str:
        return since(self._s.get("Created", 0))

    @property
    def Ports(self) -> str:
        return display_ports(self._s.get("Ports") or [])

    @property
    def State(self) -> str:
        return self._s.get("State", "")

    @property
    def Status(self) -> str:
        return self._s.get("Status", "")

    @property
    def Size(self) -> str:
        rw = output.human_size(self._s.get("SizeRw", 0) or 0)
        rootfs = self._s.get("SizeRootFs", 0) or 0
        return f"{rw} (virtual {output.human_size(rootfs)})" if rootfs > 0 else rw

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted((self._s.get("Labels") or {}).items()))

    def Label(self, name: str) -> str:
        return (self._s.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self) -> str:
        names = [m.get("Name") or m.get("Source", "") for m in self._s.get("Mounts") or []]
        return ",".join(output.ellipsis(n, 15) if self._trunc else n for n in names)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self._s.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:
        return ",".join(sorted((self._s.get("NetworkSettings") or {}).get("Networks") or {}))

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in (
            "Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
            "Ports", "RunningFor", "Size", "State", "Status")}


def ps(ctx: Any, argv: list[str], prog: str) -> int:
    """``ps``: docker's columns and ``--format`` fields; ``.Size`` in a format asks the daemon for sizes
    ("docker ps")."""
    fs = FlagSet(prog, "[OPTIONS]", "List containers", 0, 0)
    fs.add("-a, --all", help="Show all containers (default shows just running)")
    fs.add("-f, --filter", "list", help="Filter output based on conditions provided", metavar="filter")
    fs.add("--format", "string", help="Pretty-print containers using a Go template")
    fs.add("-n, --last", "int", -1, help="Show n last created containers (includes all states) (default -1)")
    fs.add("-l, --latest", help="Show the latest created container (includes all states)")
    fs.add("--no-trunc", help="Don't truncate output")
    fs.add("-q, --quiet", help="Only display container IDs")
    fs.add("-s, --size", help="Display total file sizes")
    args, _ = fs.parse_or_exit(argv)
    from berth.gotemplate import Template, TemplateError
    fmt = args.format or ("{{.ID}}" if args.quiet else "table")
    if fmt.strip() == "table":
        fmt = PS_TABLE + ("\t{{.Size}}" if args.size else "")
    try:
        template = Template(fmt[len("table"):] if fmt.startswith("table") else fmt)
    except TemplateError as exc:
        print_error(f"failed to parse template: {exc}")
        return 1
    try:  # as docker does, a --format is tried on an empty row: a field no row has fails even with no rows
        if args.format:
            template.execute(ContainerRow({"Id": ""}, not args.no_trunc))
    except TemplateError as exc:
        print_error(f"failed to execute template: {exc}")
        return 1
    size = args.size or "Size" in fmt or "json" in fmt
    limit = 1 if args.latest and args.last == -1 else args.last
    summaries = ctx.client.get("/containers/json", {
        "all": args.all or None, "limit": limit if limit != -1 else None, "size": size or None,
        "filters": filters_param(args.filter)})
    try:
        rows = [ContainerRow(s, not args.no_trunc) for s in summaries]
        text = output.render(fmt, rows, PS_TABLE, PS_TITLES)
    except TemplateError as exc:
        print_error(f"failed to execute template: {exc}")
        return 1
    sys.stdout.write(text)
    return 0
