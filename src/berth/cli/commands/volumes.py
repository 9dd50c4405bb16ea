"""Volume commands: volume create, ls, inspect, rm, prune (docs: docker CLI reference,
"docker volume create" ... "docker volume prune"; Engine API v1.41 "Volume" endpoints).

Also the small helpers the other object commands share: ``--filter`` parsing with docker's
rules, natural name order, and per-object inspect with docker's error lines.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import API_PREFIX, APIError, path_quote

VOLUMES_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_TITLES = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                 "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP",
                 "Availability": "AVAILABILITY", "Status": "STATUS"}


def parse_filters(fs: FlagSet, specs: list[str]) -> dict[str, dict[str, bool]] | None:
    """``--filter`` values as the Engine API's filters JSON (``{"name": {"value": true}}``).

    docker's ``filters.ParseFlag``: the name is trimmed and lower-cased, the value trimmed, an
    empty flag is ignored. A value without ``=`` is a flag error (exit 125).
    """
    out: dict[str, dict[str, bool]] = {}
    label = next((flag.label() for flag in fs.flags if flag.long == "filter"), "-f, --filter")
    for spec in specs:
        if not spec:
            continue
        name, sep, value = spec.partition("=")
        if not sep:
            fs.fail(f'invalid argument "{spec}" for "{label}" flag: bad format of filter (expected name=value)')
        out.setdefault(name.strip().lower(), {})[value.strip()] = True
    return out or None


def parse_map(values: list[str]) -> dict[str, str]:
    """``k=v`` flag values (``--label``, ``--opt``) as a dict; a bare ``k`` maps to ``""``."""
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def natural_key(name: str) -> list[Any]:
    """Sort key of docker's ``sortorder.NaturalLess``: digit runs compare as numbers."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", name)]


def go_json_indent(obj: Any) -> str:
    """JSON indented with 4 spaces as dockerd's encoder and the CLI's ``json.Indent`` write it:
    UTF-8 kept, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    text = json.dumps(obj, indent=4, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def inspect_each(names: list[str], fmt: str, fetch: Callable[[str], Any]) -> int:
    """``docker volume|network inspect``: objects as a JSON array (or one ``--format`` line each),
    then one ``Error response from daemon: ...`` line per name that failed; 1 when any failed."""
    found: list[Any] = []
    errors: list[str] = []
    for name in names:
        try:
            found.append(fetch(name))
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
    if fmt and fmt.strip() != "json":
        from berth.gotemplate import Template, TemplateError
        try:
            template = Template(fmt)
            sys.stdout.write("".join(template.execute(obj) + "\n" for obj in found))
        except TemplateError as exc:
            sys.stderr.write(f"template parsing error: {exc}\n")
            return 1
    else:
        sys.stdout.write(go_json_indent(found) + "\n")
    for line in errors:
        sys.stderr.write(line + "\n")
    return 1 if errors else 0


def api_version() -> tuple[int, int]:
    """The Engine API version this client speaks (its path prefix, ``/v1.41``)."""
    major, minor = API_PREFIX.lstrip("/v").split(".")
    return int(major), int(minor)


class VolumeRow:
    """One row of ``volume ls`` (docker's volumeContext fields)."""

    def __init__(self, volume: dict[str, Any]) -> None:
        self._v = volume
        self.Name: str = volume.get("Name", "")
        self.Driver: str = volume.get("Driver", "")
        self.Scope: str = volume.get("Scope", "")
        self.Mountpoint: str = volume.get("Mountpoint", "")
        # cluster (CSI) volume fields; local volumes have none
        self.Group = self.Availability = self.Status = "N/A"

    @property
    def Labels(self) -> str:
        labels = self._v.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def Label(self, name: str) -> str:
        return (self._v.get("Labels") or {}).get(name, "")

    @property
    def Links(self) -> str:
        usage = self._v.get("UsageData") or {}
        return str(usage["RefCount"]) if usage.get("RefCount", -1) >= 0 else "N/A"

    @property
    def Size(self) -> str:
        usage = self._v.get("UsageData") or {}
        return output.human_size(usage["Size"]) if usage.get("Size", -1) >= 0 else "N/A"

    def to_json(self) -> dict[str, str]:
        return {"Availability": self.Availability, "Driver": self.Driver, "Group": self.Group,
                "Labels": self.Labels, "Links": self.Links, "Mountpoint": self.Mountpoint, "Name": self.Name,
                "Scope": self.Scope, "Size": self.Size, "Status": self.Status}


def create(ctx: Any, argv: list[str], prog: str) -> int:
    """``volume create [OPTIONS] [VOLUME]``: POST /volumes/create; prints the volume's name."""
    fs = FlagSet(prog, "[OPTIONS] [VOLUME]", "Create a volume", 0, 1)
    fs.add("-d, --driver", "string", "local", help='Specify volume driver name (default "local")')
    fs.add("--label", "list", help="Set metadata for a volume", metavar="list")
    fs.add("-o, --opt", "list", help="Set driver specific options (default map[])", metavar="map")
    fs.add("--name", "string", help="Specify volume name", hidden=True)
    args, rest = fs.parse_or_exit(argv)
    if rest and args.name:
        sys.stderr.write("conflicting options: cannot specify a volume-name through both --name and "
                         "as a positional arg\n")
        return 1
    body = {"Driver": args.driver, "DriverOpts": parse_map(args.opt), "Labels": parse_map(args.label),
            "Name": rest[0] if rest else args.name}
    volume = ctx.client.post("/volumes/create", json_body=body)
    print(volume.get("Name", ""))
    return 0


def ls(ctx: Any, argv: list[str], prog: str) -> int:
    """``volume ls``: GET /volumes, rows in natural name order."""
    fs = FlagSet(prog, "[OPTIONS]", "List volumes", 0, 0)
    fs.add("-f, --filter", "list", help="Provide filter values (e.g. \"dangling=true\")", metavar="filter")
    fs.add("--format", "string", help="Format output using a custom template", metavar="string")
    fs.add("-q, --quiet", help="Only display volume names")
    args, _ = fs.parse_or_exit(argv)
    listing = ctx.client.get("/volumes", {"filters": parse_filters(fs, args.filter)})
    rows = sorted((VolumeRow(v) for v in listing.get("Volumes") or []), key=lambda r: natural_key(r.Name))
    if args.quiet and args.format.strip() in ("", "table"):
        sys.stdout.write("".join(row.Name + "\n" for row in rows))
        return 0
    return output.print_rendered(args.format, rows, VOLUMES_TABLE, VOLUME_TITLES)


def inspect(ctx: Any, argv: list[str], prog: str) -> int:
    """``volume inspect``: GET /volumes/{name} for each name."""
    fs = FlagSet(prog, "[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", 1)
    fs.add("-f, --format", "string", help="Format output using a custom template")
    args, names = fs.parse_or_exit(argv)
    return inspect_each(names, args.format, lambda name: ctx.client.get(f"/volumes/{path_quote(name)}"))


def rm(ctx: Any, argv: list[str], prog: str) -> int:
    """``volume rm``: DELETE /volumes/{name}; prints each removed name, errors after all."""
    fs = FlagSet(prog, "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", 1)
    fs.add("-f, --force", help="Force the removal of one or more volumes")
    args, names = fs.parse_or_exit(argv)
    errors = []
    for name in names:
        try:
            ctx.client.delete(f"/volumes/{path_quote(name)}", {"force": args.force or None})
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        print(name)
    for line in errors:
        sys.stderr.write(line + "\n")
    return 1 if errors else 0


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    """``volume prune``: POST /volumes/prune after docker's prompt.

    Before API 1.42 the daemon prunes every unused volume and ``--all`` is refused, as docker does.
    """
    fs = FlagSet(prog, "[OPTIONS]", "Remove unused local volumes", 0, 0)
    fs.add("-a, --all", help="Remove all unused volumes, not just anonymous ones")
    fs.add("--filter", "list", help='Provide filter values (e.g. "label=<label>")', metavar="filter")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    args, _ = fs.parse_or_exit(argv)
    filters = parse_filters(fs, args.filter) or {}
    version = api_version()
    if version < (1, 42):
        if args.all:
            sys.stderr.write(f'"--all" requires API version 1.42, but the Docker daemon API version is '
                             f"{version[0]}.{version[1]}\n")
            return 1
        warning = "WARNING! This will remove all local volumes not used by at least one container."
    elif args.all:
        filters.setdefault("all", {})["true"] = True
        warning = "WARNING! This will remove all local volumes not used by at least one container."
    else:
        warning = "WARNING! This will remove anonymous local volumes not used by at least one container."
    from berth.cli.commands.images import confirm
    if not args.force and not confirm(warning):
        return 0
    report = ctx.client.post("/volumes/prune", {"filters": filters or None}) or {}
    sys.stdout.write(deleted_volumes(report))
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0), 4)}")
    return 0


def deleted_volumes(report: dict[str, Any]) -> str:
    """The ``Deleted Volumes:`` section of a ``POST /volumes/prune`` answer (names, one a line,
    then a blank line); ``""`` when none was deleted."""
    deleted = report.get("VolumesDeleted") or []
    return "Deleted Volumes:\n" + "".join(name + "\n" for name in deleted) + "\n" if deleted else ""
