"""System commands: version, info, events, system df, system prune."""

from __future__ import annotations

import platform
import sys
import time
from typing import Any

from berth import API_VERSION, __version__
from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import APIError, ConnectionFailed

VERSION_TEMPLATE = """Client:
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}
 Go version:        {{.Client.GoVersion}}
 Git commit:        {{.Client.GitCommit}}
 Built:             {{.Client.BuildTime}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           default
{{- if .Server}}

Server:{{if .Server.Platform.Name}} {{.Server.Platform.Name}}{{end}}
{{- range $component := .Server.Components}}
 {{$component.Name}}:
  Version:          {{$component.Version}}
{{- if eq $component.Name "Engine"}}
  API version:      {{index $component.Details "ApiVersion"}} (minimum version {{index $component.Details "MinAPIVersion"}})
  Go version:       {{index $component.Details "GoVersion"}}
  Git commit:       {{index $component.Details "GitCommit"}}
  Built:            {{index $component.Details "BuildTime"}}
  OS/Arch:          {{index $component.Details "Os"}}/{{index $component.Details "Arch"}}
  Experimental:     {{index $component.Details "Experimental"}}
{{- else}}
{{- range $key, $value := $component.Details}}
  {{printf "%-18s" (printf "%s:" $key)}}{{$value}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}
"""


def version(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Show the berth version information", 0, 0)
    fs.add("-f, --format", "string", help="Format the output using the given Go template")
    args, _ = fs.parse_or_exit(argv)
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    client = {"Platform": {"Name": "berth"}, "Version": __version__, "ApiVersion": API_VERSION,
              "DefaultAPIVersion": API_VERSION, "APIVersion": API_VERSION, "GoVersion": py, "GitCommit": "",
              "BuildTime": "", "Os": "linux", "Arch": _arch(), "Context": "default"}
    server = None
    error = None
    try:
        server = ctx.client.get("/version")
    except (APIError, ConnectionFailed) as exc:
        error = exc
    if server is not None:
        # docker's types.Version names it APIVersion (json "ApiVersion"); templates use the Go name
        server = {**server, "APIVersion": server.get("ApiVersion", "")}
        if not args.format:
            server = _reformat_build_times(server)
    from berth.gotemplate import Template
    text = args.format or VERSION_TEMPLATE.rstrip("\n")
    sys.stdout.write(Template(text).execute({"Client": client, "Server": server}) + "\n")
    if error is not None:
        sys.stderr.write(f"{getattr(error, 'message', error)}\n")
        return 1
    return 0


def _reformat_build_times(server: dict[str, Any]) -> dict[str, Any]:
    """Build times as the docker CLI shows them: RFC 3339 becomes Go's ANSIC, ``Thu May  7 21:09:36 2026``."""
    from datetime import datetime

    def ansic(value: Any) -> Any:
        try:
            return datetime.fromisoformat(value).strftime("%a %b %e %H:%M:%S %Y")
        except (TypeError, ValueError):
            return value

    out = {**server, "BuildTime": ansic(server.get("BuildTime"))}
    out["Components"] = [{**c, "Details": {**(c.get("Details") or {}),
                                           **({"BuildTime": ansic(c["Details"]["BuildTime"])}
                                              if "BuildTime" in (c.get("Details") or {}) else {})}}
                         for c in server.get("Components") or []]
    return out


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def info(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Display system-wide information", 0, 0)
    fs.add("-f, --format", "string", help="Format the output using the given Go template")
    args, _ = fs.parse_or_exit(argv)
    data = ctx.client.get("/info")
    if args.format:
        from berth.gotemplate import Template
        sys.stdout.write(Template(args.format).execute(data) + "\n")
        return 0
    sys.stdout.write("\n".join(info_lines(data)) + "\n\n")
    for warning in data.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    return 0


def info_lines(data: dict[str, Any]) -> list[str]:
    """``docker info``'s text for an ``/info`` document (docker CLI prettyPrintInfo: a line only for
    what the daemon reports, driver status pairs, security options with their settings)."""
    plugins = data.get("Plugins") or {}
    lines = ["Client:", f" Version:    {__version__}", " Context:    default", " Debug Mode: false", "",
             "Server:", f" Containers: {data.get('Containers', 0)}",
             f"  Running: {data.get('ContainersRunning', 0)}", f"  Paused: {data.get('ContainersPaused', 0)}",
             f"  Stopped: {data.get('ContainersStopped', 0)}", f" Images: {data.get('Images', 0)}",
             f" Server Version: {data.get('ServerVersion', '')}", f" Storage Driver: {data.get('Driver', '')}"]
    lines += [f"  {key}: {value}" for key, value in data.get("DriverStatus") or []]
    for key, title in (("LoggingDriver", "Logging Driver"), ("CgroupDriver", "Cgroup Driver"),
                       ("CgroupVersion", "Cgroup Version")):
        if data.get(key):
            lines.append(f" {title}: {data[key]}")
    lines.append(" Plugins:")
    for kind in ("Volume", "Network", "Authorization", "Log"):
        if plugins.get(kind) or kind != "Authorization":
            lines.append(f"  {kind}: {' '.join(plugins.get(kind) or [])}")
    swarm = (data.get("Swarm") or {}).get("LocalNodeState") or "inactive"
    lines.append(f" Swarm: {swarm}")
    if data.get("Runtimes"):
        lines.append(f" Runtimes: {' '.join(sorted(data['Runtimes']))}")
    if data.get("DefaultRuntime"):
        lines.append(f" Default Runtime: {data['DefaultRuntime']}")
    return lines + _info_host_lines(data)


def _info_host_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    if data.get("OSType") == "linux":
        lines.append(f" Init Binary: {data.get('InitBinary', '')}")
        for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"), ("init", "InitCommit")):
            commit = data.get(key) or {}
            expected = commit.get("Expected", commit.get("ID", ""))
            suffix = f" (expected: {expected})" if expected != commit.get("ID", "") else ""
            lines.append(f" {name} version: {commit.get('ID', '')}{suffix}")
    if data.get("SecurityOptions"):
        lines.append(" Security Options:")
        for option in data["SecurityOptions"]:
            fields = dict(kv.split("=", 1) for kv in option.split(",") if "=" in kv)
            lines.append(f"  {fields.pop('name', option)}")
            lines += [f"   {key.title()}: {value}" for key, value in fields.items()]
    lines += [f" Kernel Version: {data.get('KernelVersion', '')}",
              f" Operating System: {data.get('OperatingSystem', '')}", f" OSType: {data.get('OSType', '')}",
              f" Architecture: {data.get('Architecture', '')}", f" CPUs: {data.get('NCPU', 0)}",
              f" Total Memory: {output.bytes_size(data.get('MemTotal', 0))}", f" Name: {data.get('Name', '')}"]
    if data.get("ID"):
        lines.append(f" ID: {data['ID']}")
    lines += [f" Docker Root Dir: {data.get('DockerRootDir', '')}", f" Debug Mode: {str(data.get('Debug', False)).lower()}"]
    if data.get("Debug"):
        lines += [f"  File Descriptors: {data.get('NFd', 0)}", f"  Goroutines: {data.get('NGoroutines', 0)}",
                  f"  System Time: {data.get('SystemTime', '')}",
                  f"  EventsListeners: {data.get('NEventsListener', 0)}"]
    if data.get("Labels"):
        lines += [" Labels:", *(f"  {label}" for label in data["Labels"])]
    lines.append(f" Experimental: {str(data.get('ExperimentalBuild', False)).lower()}")
    registry = data.get("RegistryConfig") or {}
    if registry.get("InsecureRegistryCIDRs"):
        lines += [" Insecure Registries:", *(f"  {cidr}" for cidr in registry["InsecureRegistryCIDRs"])]
    if registry.get("Mirrors"):
        lines += [" Registry Mirrors:", *(f"  {mirror}" for mirror in registry["Mirrors"])]
    lines.append(f" Live Restore Enabled: {str(data.get('LiveRestoreEnabled', False)).lower()}")
    return lines


def events(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Get real time events from the server", 0, 0)
    fs.add("-f, --filter", "list", help="Filter output based on conditions provided")
    fs.add("--format", "string", help="Format the output using the given Go template")
    fs.add("--since", "string", help="Show all events created since timestamp")
    fs.add("--until", "string", help="Stream events until this timestamp")
    args, _ = fs.parse_or_exit(argv)
    from berth.cli.commands.images import filters_param
    from berth.timeutil import timestamp_param

    params: dict[str, Any] = {"filters": filters_param(args.filter)}
    for name in ("since", "until"):
        value = getattr(args, name)
        if value:
            try:
                params[name] = timestamp_param(value, time.time())
            except ValueError as exc:
                sys.stderr.write(f"{exc}\n")
                return 1
    response = ctx.client.request("GET", "/events", params, stream=True)
    template = None
    if args.format:
        from berth.gotemplate import Template
        template = Template(args.format)
    try:
        for event in response.iter_json():
            if template is not None:
                sys.stdout.write(template.execute(event) + "\n")
            else:
                sys.stdout.write(format_event(event) + "\n")
            sys.stdout.flush()
    finally:
        response.close()
    return 0


def format_event(event: dict[str, Any]) -> str:
    """docker's default event line: ``<time> <type> <action> <id> (k=v, ...)``, the time in local
    time with nine fraction digits (jsonmessage.RFC3339NanoFixed)."""
    from berth.cli.commands.images import rfc3339_local
    ns = int(event.get("timeNano") or event.get("time", 0) * 1_000_000_000)
    secs, nanos = divmod(ns, 1_000_000_000)
    whole = rfc3339_local(secs)
    stamp = f"{whole[:19]}.{nanos:09d}{whole[19:]}"
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    tail = ""
    if attrs:
        tail = " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return f"{stamp} {event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}{tail}"


def df(ctx: Any, argv: list[str], prog: str) -> int:
    """``system df``: docker's summary table from ``GET /system/df`` (sizes with 4 significant
    digits as go-units ``HumanSize``, reclaimable space with its share of the total); ``-v``
    prints the detailed tables of :mod:`berth.cli.commands.diskusage`."""
    fs = FlagSet(prog, "[OPTIONS]", "Show berth disk usage", 0, 0)
    fs.add("--format", "string", help="Pretty-print images using a Go template")
    fs.add("-v, --verbose", help="Show detailed information on space usage")
    args, _ = fs.parse_or_exit(argv)
    data = ctx.client.get("/system/df")
    if args.verbose and not args.format:
        from berth.cli.commands.diskusage import verbose_report
        sys.stdout.write(verbose_report(data))
        return 0
    rows = [_df_row("Images", data.get("Images") or [], lambda i: i.get("Size", 0),
                    lambda i: i.get("Containers", 0) > 0, data.get("LayersSize"),
                    lambda i: -1 if i.get("SharedSize", -1) < 0 else i.get("Size", 0) - i["SharedSize"]),
            _df_row("Containers", data.get("Containers") or [], lambda c: c.get("SizeRw", 0),
                    lambda c: c.get("State") == "running"),
            _df_row("Local Volumes", data.get("Volumes") or [],
                    lambda v: max((v.get("UsageData") or {}).get("Size", 0), 0),
                    lambda v: (v.get("UsageData") or {}).get("RefCount", 0) > 0),
            {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}]
    if args.format:
        from berth.gotemplate import Template
        template = Template(args.format)
        sys.stdout.write("".join(template.execute(row) + "\n" for row in rows))
        return 0
    lines = ["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE"]
    lines += [f"{r['Type']}\t{r['TotalCount']}\t{r['Active']}\t{r['Size']}\t{r['Reclaimable']}" for r in rows]
    sys.stdout.write(output.tabwrite(lines))
    return 0


def _df_row(kind: str, items: list[Any], size: Any, active: Any, total: int | None = None,
            unique: Any = None) -> dict[str, str]:
    """One ``system df`` row; ``unique(item)`` is the space only that item uses (-1: unknown, as
    docker's CLI skips images whose SharedSize the daemon did not compute)."""
    total_size = total if total is not None else sum(size(i) for i in items)
    used = sum(max((unique or size)(i), 0) for i in items if active(i))
    reclaimable = max(total_size - used, 0)
    text = output.human_size(reclaimable, 4)
    if total_size > 0:
        text += f" ({reclaimable * 100 // total_size}%)"
    return {"Type": kind, "TotalCount": str(len(items)), "Active": str(sum(1 for i in items if active(i))),
            "Size": output.human_size(total_size, 4), "Reclaimable": text}


def prune_warning(all_images: bool, volumes: bool) -> str:
    """The list ``system prune`` asks about before it removes anything (docker CLI 28's wording)."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if all_images
                 else "all dangling images")
    items.append("all build cache" if all_images else "unused build cache")
    return "WARNING! This will remove:\n" + "".join(f"  - {item}\n" for item in items)


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    """``system prune [-a] [--volumes] [-f] [--filter k=v]`` ("docker system prune", docker CLI 28).

    Prunes containers, networks, volumes (``--volumes``), images (dangling ones, or every unused one
    with ``-a``) and build cache in that order, each with the ``--filter`` values, printing each
    prune's ``Deleted ...:`` section as it comes and then the summed ``Total reclaimed space``. The
    first daemon error ends the command (status 1); ``until`` with ``--volumes`` is refused first.
    """
    fs = FlagSet(prog, "[OPTIONS]", "Remove unused data", 0, 0)
    fs.add("-a, --all", help="Remove all unused images not just dangling ones")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    fs.add("--volumes", help="Prune anonymous volumes")
    fs.add("--filter", "list", help='Provide filter values (e.g. "label=<key>=<value>")', metavar="filter")
    args, _ = fs.parse_or_exit(argv)
    from berth.cli.commands.build import deleted_build_cache
    from berth.cli.commands.containers import deleted_containers
    from berth.cli.commands.images import confirm, deleted_images, filters_param
    from berth.cli.commands.networks import deleted_networks
    from berth.cli.commands.volumes import deleted_volumes
    filters = filters_param(args.filter)
    if args.volumes and filters and "until" in filters:
        sys.stderr.write('ERROR: The "until" filter is not supported with "--volumes"\n')
        return 1
    if not args.force and not confirm(prune_warning(args.all, args.volumes)):
        return 0
    image_filters = filters_param(args.filter, {"dangling": ["false" if args.all else "true"]})
    steps: list[tuple[str, dict[str, Any], Any]] = [
        ("/containers/prune", {"filters": filters}, deleted_containers),
        ("/networks/prune", {"filters": filters}, deleted_networks)]
    if args.volumes:
        steps.append(("/volumes/prune", {"filters": filters}, deleted_volumes))
    steps += [("/images/prune", {"filters": image_filters}, deleted_images),
              ("/build/prune", {"all": args.all or None, "filters": filters}, deleted_build_cache)]
    total = 0
    for path, params, section in steps:
        report = ctx.client.post(path, params) or {}
        total += report.get("SpaceReclaimed") or 0
        sys.stdout.write(section(report))
        sys.stdout.flush()
    print(f"Total reclaimed space: {output.human_size(total, 4)}")
    return 0
