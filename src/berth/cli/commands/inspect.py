"""``inspect``: low-level information on containers, images, networks and volumes.

Without ``--type`` each name is tried as a container, then an image, network and volume, as
docker does; the output is a JSON array indented with 4 spaces, or one ``--format`` line per object.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

ENDPOINTS = {
    "container": "/containers/{}/json",
    "image": "/images/{}/json",
    "network": "/networks/{}",
    "volume": "/volumes/{}",
}
ORDER = ("container", "image", "network", "volume")


def inspect(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", 1)
    fs.add("-f, --format", "string", help="Format the output using the given Go template")
    fs.add("-s, --size", help="Display total file sizes if the type is container")
    fs.add("--type", "string", help="Return JSON for specified type")
    args, names = fs.parse_or_exit(argv)
    kinds: tuple[str, ...] = ORDER
    if args.type:
        if args.type not in ENDPOINTS:
            sys.stderr.write(f'"{args.type}" is not a valid value for --type\n')
            return 1
        kinds = (args.type,)
    return inspect_objects(ctx, names, args.format, kinds, size=args.size)


def _fetch(ctx: Any, name: str, kinds: tuple[str, ...], size: bool) -> Any:
    for kind in kinds:
        params = {"size": True} if size and kind == "container" else None
        try:
            return ctx.client.get(ENDPOINTS[kind].format(path_quote(name)), params)
        except APIError as exc:
            if exc.status != 404:
                raise
    return None


def inspect_objects(ctx: Any, names: list[str], fmt: str, kinds: tuple[str, ...] = ORDER,
                    size: bool = False) -> int:
    """Inspect ``names`` as ``kinds``; prints results and docker's ``Error: No such ...`` lines."""
    found: list[Any] = []
    errors: list[str] = []
    for name in names:
        obj = _fetch(ctx, name, kinds, size)
        if obj is None:
            noun = "object" if len(kinds) > 1 else kinds[0]
            errors.append(f"Error: No such {noun}: {name}")
        else:
            found.append(obj)
    if fmt:
        from berth.gotemplate import Template, TemplateError
        try:
            template = Template(_json_shortcut(fmt))
            sys.stdout.write("".join(template.execute(obj) + "\n" for obj in found))
        except TemplateError as exc:
            sys.stderr.write(f"template parsing error: {exc}\n")
            return 1
    else:
        sys.stdout.write(json.dumps(found, indent=4) + "\n")
    for line in errors:
        sys.stderr.write(line + "\n")
    return 1 if errors else 0


def _json_shortcut(fmt: str) -> str:
    return "{{json .}}" if fmt.strip() == "json" else fmt
