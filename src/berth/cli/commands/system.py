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
    from berth.gotemplate import Template
    text = args.format or VERSION_TEMPLATE
    sys.stdout.write(Template(text).execute({"Client": client, "Server": server}) + "\n")
    if error is not None:
        sys.stderr.write(f"{getattr(error, 'message', error)}\n")
        return 1
    return 0


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
    lines = [
        "Client:", " Context:    default", " Debug Mode: false", "",
        "Server:",
        f" Containers: {data.get('Containers', 0)}",
        f"  Running: {data.get('ContainersRunning', 0)}",
        f"  Paused: {data.get('ContainersPaused', 0)}",
        f"  Stopped: {data.get('ContainersStopped', 0)}",
        f" Images: {data.get('Images', 0)}",
        f" Server Version: {data.get('ServerVersion', '')}",
        f" Storage Driver: {data.get('Driver', '')}",
        f" Logging Driver: {data.get('LoggingDriver', '')}",
        f" Cgroup Driver: {data.get('CgroupDriver', '')}",
        f" Cgroup Version: {data.get('CgroupVersion', '')}",
        " Plugins:",
        f"  Volume: {' '.join((data.get('Plugins') or {}).get('Volume') or [])}",
        f"  Network: {' '.join((data.get('Plugins') or {}).get('Network') or [])}",
        f"  Log: {' '.join((data.get('Plugins') or {}).get('Log') or [])}",
        f" Runtimes: {' '.join(sorted(data.get('Runtimes') or {}))}",
        f" Default Runtime: {data.get('DefaultRuntime', '')}",
        f" Kernel Version: {data.get('KernelVersion', '')}",
        f" Operating System: {data.get('OperatingSystem', '')}",
        f" OSType: {data.get('OSType', '')}",
        f" Architecture: {data.get('Architecture', '')}",
        f" CPUs: {data.get('NCPU', 0)}",
        f" Total Memory: {output.bytes_size(data.get('MemTotal', 0))}",
        f" Name: {data.get('Name', '')}",
        f" Docker Root Dir: {data.get('DockerRootDir', '')}",
        f" Debug Mode: {str(data.get('Debug', False)).lower()}",
        f" Live Restore Enabled: {str(data.get('LiveRestoreEnabled', False)).lower()}",
    ]
    print("\n".join(lines))
    return 0


def events(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Get real time events from the server", 0, 0)
    fs.add("-f, --filter", "list", help="Filter output based on conditions provided")
    fs.add("--format", "string", help="Format the output using the given Go template")
    fs.add("--since", "string", help="Show all events created since timestamp")
    fs.add("--until", "string", help="Stream events until this timestamp")
    args, _ = fs.parse_or_exit(argv)
    from berth.cli.commands.images import filters_param
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


def timestamp_param(value: str, now: float) -> str:
    """A ``--since``/``--until`` value as the docker CLI sends it (GetTimestamp): a duration is
    whole seconds before ``now``, a Unix timestamp passes as given, a date becomes ``secs.nanos``.
    Raises ValueError with docker's ``failed to parse value as time or duration: "x"``."""
    import re

    from berth.timeutil import parse_duration, parse_rfc3339_ns, parse_timestamp_arg
    if value != "0":
        try:
            return str(int(now - parse_duration(value)))
        except ValueError:
            pass
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        return value
    try:
        ns = parse_rfc3339_ns(value) if "T" in value else parse_timestamp_arg(value)
    except ValueError:
        raise ValueError(f'failed to parse value as time or duration: "{value}"') from None
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


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
    fs = FlagSet(prog, "[OPTIONS]", "Show berth disk usage", 0, 0)
    fs.add("--format", "string")
    fs.add("-v, --verbose")
    fs.parse_or_exit(argv)
    images = ctx.client.get("/images/json")
    size = sum(i.get("Size", 0) for i in images)
    rows = ["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE",
            f"Images\t{len(images)}\t{sum(1 for i in images if i.get('Containers', 0) > 0)}\t"
            f"{output.human_size(size)}\t{output.human_size(0)}"]
    sys.stdout.write(output.tabwrite(rows))
    return 0


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Remove unused data", 0, 0)
    fs.add("-a, --all")
    fs.add("-f, --force")
    fs.add("--volumes")
    fs.add("--filter", "list")
    args, _ = fs.parse_or_exit(argv)
    from berth.cli.commands.images import confirm, filters_param
    if not args.force and not confirm("WARNING! This will remove all stopped containers, unused networks and "
                                      "dangling images."):
        return 0
    total = 0
    for path, extra in (("/containers/prune", None), ("/networks/prune", None),
                        ("/images/prune", {"dangling": ["false" if args.all else "true"]})):
        try:
            report = ctx.client.post(path, {"filters": filters_param(args.filter, extra)})
        except APIError:
            continue
        total += (report or {}).get("SpaceReclaimed", 0)
    if args.volumes:
        report = ctx.client.post("/volumes/prune")
        total += (report or {}).get("SpaceReclaimed", 0)
    time.sleep(0)
    print(f"Total reclaimed space: {output.human_size(total)}")
    return 0
