"""The flags of ``run`` and ``create``, and the Engine API create request they make.

Sources: docker CLI reference "docker run" / "docker create" (flag names, types, defaults), Engine API
v1.41 "ContainerCreate" (request body: Config fields, ``HostConfig``, ``NetworkingConfig``). The body
is laid out field for field as the docker 20.10 CLI sends it (zero values included, keys in the same
order, omitted where docker omits empty values), so a daemon sees the same request from either CLI.

The first half is the flag table and the body assembly; the second half parses the value syntaxes
(``-p``, ``--mount``, ``--ulimit``, sizes, env files...) as docker's ``opts`` package accepts them.
Errors are :class:`OptionError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.cli.flags import FlagSet, Namespace

__all__ = ["CreateRequest", "OptionError", "add_create_flags", "build_create_request"]

# (names, kind, default, metavar, help); kinds are FlagSet kinds, typed values are parsed later
_FLAGS: list[tuple[str, str, Any, str, str]] = [
    ("--add-host", "list", None, "list", "Add a custom host-to-IP mapping (host:ip)"),
    ("-a, --attach", "list", None, "list", "Attach to STDIN, STDOUT or STDERR"),
    ("--blkio-weight", "int", None, "uint16", "Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    ("--cap-add", "list", None, "list", "Add Linux capabilities"),
    ("--cap-drop", "list", None, "list", "Drop Linux capabilities"),
    ("--cgroup-parent", "string", None, "string", "Optional parent cgroup for the container"),
    ("--cgroupns", "string", None, "string", "Cgroup namespace to use (host|private)"),
    ("--cidfile", "string", None, "string", "Write the container ID to the file"),
    ("--cpu-period", "int", None, "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
    ("--cpu-quota", "int", None, "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
    ("--cpu-rt-period", "int", None, "int", "Limit CPU real-time period in microseconds"),
    ("--cpu-rt-runtime", "int", None, "int", "Limit CPU real-time runtime in microseconds"),
    ("-c, --cpu-shares", "int", None, "int", "CPU shares (relative weight)"),
    ("--cpus", "string", None, "decimal", "Number of CPUs"),
    ("--cpuset-cpus", "string", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
    ("--cpuset-mems", "string", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
    ("--device", "list", None, "list", "Add a host device to the container"),
    ("--device-cgroup-rule", "list", None, "list", "Add a rule to the cgroup allowed devices list"),
    ("--disable-content-trust", "bool", True, "", "Skip image verification (default true)"),
    ("--dns", "list", None, "list", "Set custom DNS servers"),
    ("--dns-option", "list", None, "list", "Set DNS options"),
    ("--dns-search", "list", None, "list", "Set custom DNS search domains"),
    ("--domainname", "string", None, "string", "Container NIS domain name"),
    ("--entrypoint", "string", None, "string", "Overwrite the default ENTRYPOINT of the image"),
    ("-e, --env", "list", None, "list", "Set environment variables"),
    ("--env-file", "list", None, "list", "Read in a file of environment variables"),
    ("--expose", "list", None, "list", "Expose a port or a range of ports"),
    ("--gpus", "string", None, "gpu-request", "GPU devices to add to the container ('all' to pass all GPUs)"),
    ("--group-add", "list", None, "list", "Add additional groups to join"),
    ("--health-cmd", "string", None, "string", "Command to run to check health"),
    ("--health-interval", "string", None, "duration", "Time between running the check (ms|s|m|h) (default 0s)"),
    ("--health-retries", "int", None, "int", "Consecutive failures needed to report unhealthy"),
    ("--health-start-period", "string", None, "duration",
     "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) "
     "(default 0s)"),
    ("--health-timeout", "string", None, "duration", "Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
    ("-h, --hostname", "string", None, "string", "Container host name"),
    ("--init", "bool", None, "", "Run an init inside the container that forwards signals and reaps processes"),
    ("-i, --interactive", "bool", None, "", "Keep STDIN open even if not attached"),
    ("--ip", "string", None, "string", "IPv4 address (e.g., 172.30.100.104)"),
    ("--ip6", "string", None, "string", "IPv6 address (e.g., 2001:db8::33)"),
    ("--ipc", "string", None, "string", "IPC mode to use"),
    ("--isolation", "string", None, "string", "Container isolation technology"),
    ("--kernel-memory", "string", None, "bytes", "Kernel memory limit"),
    ("-l, --label", "list", None, "list", "Set meta data on a container"),
    ("--label-file", "list", None, "list", "Read in a line delimited file of labels"),
    ("--link", "list", None, "list", "Add link to another container"),
    ("--link-local-ip", "list", None, "list", "Container IPv4/IPv6 link-local addresses"),
    ("--log-driver", "string", None, "string", "Logging driver for the container"),
    ("--log-opt", "list", None, "list", "Log driver options"),
    ("--mac-address", "string", None, "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    ("-m, --memory", "string", None, "bytes", "Memory limit"),
    ("--memory-reservation", "string", None, "bytes", "Memory soft limit"),
    ("--memory-swap", "string", None, "bytes",
     "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    ("--memory-swappiness", "int", -1, "int", "Tune container memory swappiness (0 to 100) (default -1)"),
    ("--mount", "list", None, "mount", "Attach a filesystem mount to the container"),
    ("--name", "string", None, "string", "Assign a name to the container"),
    ("--network", "list", None, "network", "Connect a container to a network"),
    ("--net", "list", None, "network", "Connect a container to a network"),
    ("--network-alias", "list", None, "list", "Add network-scoped alias for the container"),
    ("--net-alias", "list", None, "list", "Add network-scoped alias for the container"),
    ("--no-healthcheck", "bool", None, "", "Disable any container-specified HEALTHCHECK"),
    ("--oom-kill-disable", "bool", None, "", "Disable OOM Killer"),
    ("--oom-score-adj", "int", None, "int", "Tune host's OOM preferences (-1000 to 1000)"),
    ("--pid", "string", None, "string", "PID namespace to use"),
    ("--pids-limit", "int", None, "int", "Tune container pids limit (set -1 for unlimited)"),
    ("--platform", "string", None, "string", "Set platform if server is multi-platform capable"),
    ("--privileged", "bool", None, "", "Give extended privileges to this container"),
    ("-p, --publish", "list", None, "list", "Publish a container's port(s) to the host"),
    ("-P, --publish-all", "bool", None, "", "Publish all exposed ports to random ports"),
    ("--pull", "string", "missing", "string",
     'Pull image before running ("always"|"missing"|"never") (default "missing")'),
    ("-q, --quiet", "bool", None, "", "Suppress the pull output"),
    ("--read-only", "bool", None, "", "Mount the container's root filesystem as read only"),
    ("--restart", "string", "no", "string", 'Restart policy to apply when a container exits (default "no")'),
    ("--rm", "bool", None, "", "Automatically remove the container when it exits"),
    ("--runtime", "string", None, "string", "Runtime to use for this container"),
    ("--security-opt", "list", None, "list", "Security Options"),
    ("--shm-size", "string", None, "bytes", "Size of /dev/shm"),
    ("--stop-signal", "string", "SIGTERM", "string", 'Signal to stop a container (default "SIGTERM")'),
    ("--stop-timeout", "int", None, "int", "Timeout (in seconds) to stop a container"),
    ("--storage-opt", "list", None, "list", "Storage driver options for the container"),
    ("--sysctl", "list", None, "map", "Sysctl options (default map[])"),
    ("--tmpfs", "list", None, "list", "Mount a tmpfs directory"),
    ("-t, --tty", "bool", None, "", "Allocate a pseudo-TTY"),
    ("--ulimit", "list", None, "ulimit", "Ulimit options (default [])"),
    ("-u, --user", "string", None, "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
    ("--userns", "string", None, "string", "User namespace to use"),
    ("--uts", "string", None, "string", "UTS namespace to use"),
    ("-v, --volume", "list", None, "list", "Bind mount a volume"),
    ("--volume-driver", "string", None, "string", "Optional volume driver for the container"),
    ("--volumes-from", "list", None, "list", "Mount volumes from the specified container(s)"),
    ("-w, --workdir", "string", None, "string", "Working directory inside the container"),
]
_HIDDEN = {"--net", "--net-alias"}
_RUN_ONLY: list[tuple[str, str, Any, str, str]] = [
    ("-d, --detach", "bool", None, "", "Run container in background and print container ID"),
    ("--detach-keys", "string", None, "string", "Override the key sequence for detaching a container"),
    ("--sig-proxy", "bool", True, "", "Proxy received signals to the process (default true)"),
]
_LOCALHOST_DNS = re.compile(r"(127\.(\d{1,3}\.){2}\d{1,3})|(::1)$")


def add_create_flags(fs: FlagSet, run: bool = False) -> FlagSet:
    """Declare the ``create`` flags on ``fs`` (plus ``-d``, ``--detach-keys``, ``--sig-proxy`` for ``run``)."""
    table = sorted(_FLAGS + (_RUN_ONLY if run else []), key=lambda f: f[0].split("--")[1])
    for names, kind, default, metavar, text in table:
        fs.add(names, kind, default, help=text, metavar=metavar, hidden=names in _HIDDEN)
    return fs


@dataclass
class CreateRequest:
    """What ``POST /containers/create`` needs: the body, ``name`` and ``platform`` query values, plus the
    client-side pull policy, ``--cidfile`` path and warnings the docker CLI prints before creating."""

    image: str
    body: dict[str, Any]
    name: str = ""
    platform: str = ""
    pull: str = "missing"
    cidfile: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, str]:
        """Query parameters of the create call (only the ones given)."""
        return {k: v for k, v in (("name", self.name), ("platform", self.platform)) if v}


def build_create_request(args: Namespace, positional: list[str],
                         environ: Mapping[str, str] | None = None) -> CreateRequest:
    """Turn parsed ``run``/``create`` flags and ``IMAGE [COMMAND] [ARG...]`` into a create request.

    ``environ`` resolves ``-e NAME`` and bare names in ``--env-file`` (default ``os.environ``).
    Raises :class:`OptionError` with docker's wording (flag-value errors name the flag).
    """
    env = os.environ if environ is None else environ
    image, command = positional[0], positional[1:]
    attach = _attach_streams(args.attach)
    values = _typed_values(args)
    exposed, bindings = port_bindings(args.publish, args.expose)
    host = _host_config(args, values, bindings)
    config = _config(args, image, command, attach, exposed, env, values)
    request = CreateRequest(image, {**config, "HostConfig": host,
                                    "NetworkingConfig": {"EndpointsConfig": _endpoints(args)}},
                            name=args.name, platform=args.platform, pull=args.pull, cidfile=args.cidfile)
    if args.oom_kill_disable and not host["Memory"]:
        request.warnings.append("WARNING: Disabling the OOM killer on containers without setting a "
                                "'-m/--memory' limit may be dangerous.")
    if host["KernelMemory"]:
        request.warnings.append("WARNING: Specifying a kernel memory limit is deprecated and will be "
                                "removed in a future release.")
    for server in host["Dns"]:
        if _LOCALHOST_DNS.search(server):
            request.warnings.append(f"WARNING: Localhost DNS setting (--dns={server}) may fail in containers.")
    return request


def _attach_streams(values: list[str]) -> set[str]:
    out = set()
    for value in values:
        lowered = value.lower()
        if lowered not in ("stdin", "stdout", "stderr"):
            raise bad_flag("-a, --attach", value, "valid streams are STDIN, STDOUT and STDERR")
        out.add(lowered)
    return out


def _typed_values(args: Namespace) -> dict[str, Any]:
    """Flag values that docker converts while parsing the command line (its pflag Value types)."""
    health = {name: duration_ns(f"--health-{name}", getattr(args, f"health_{name.replace('-', '_')}"))
              for name in ("interval", "timeout", "start-period")}
    return {
        "memory": memory_bytes("-m, --memory", args.memory),
        "memory_reservation": memory_bytes("--memory-reservation", args.memory_reservation),
        "memory_swap": memory_bytes("--memory-swap", args.memory_swap, swap=True),
        "kernel_memory": memory_bytes("--kernel-memory", args.kernel_memory),
        "shm_size": memory_bytes("--shm-size", args.shm_size),
        "nano_cpus": nano_cpus(args.cpus),
        "ulimits": [ulimit(v) for v in args.ulimit] or None,
        "mounts": [mount_spec(v) for v in args.mount],
        "health": health,
        "dns": [validate_dns(v) for v in args.dns],
        "dns_search": [validate_dns_search(v) for v in args.dns_search],
        "extra_hosts": [validate_add_host(v) for v in args.add_host] or None,
        "links": [validate_link(v) for v in args.link] or None,
        "sysctls": dict(sorted(split_kv(validate_sysctl(v)) for v in args.sysctl)),
    }


def _healthcheck(args: Namespace, health: dict[str, int]) -> dict[str, Any] | None:
    given = bool(args.health_cmd) or any(health.values()) or bool(args.health_retries)
    if args.no_healthcheck:
        if given:
            raise OptionError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    for name, value in (("interval", health["interval"]), ("timeout", health["timeout"]),
                        ("retries", args.health_retries), ("start-period", health["start-period"])):
        if value < 0:
            raise OptionError(f"--health-{name} cannot be negative")
    check: dict[str, Any] = {}
    if args.health_cmd:
        check["Test"] = ["CMD-SHELL", args.health_cmd]
    for key, value in (("Interval", health["interval"]), ("Timeout", health["timeout"]),
                       ("StartPeriod", health["start-period"]), ("Retries", args.health_retries)):
        if value:
            check[key] = value
    return check


def _config(args: Namespace, image: str, command: list[str], attach: set[str], exposed: dict[str, Any],
            environ: Mapping[str, str], values: dict[str, Any]) -> dict[str, Any]:
    if args.mac_address:
        validate_mac(args.mac_address)
    stdin = "stdin" in attach or args.interactive
    volumes: dict[str, Any] = {}
    for spec in args.volume:
        if _volume_source(spec) == "":
            volumes[spec] = {}
    config: dict[str, Any] = {
        "Hostname": args.hostname, "Domainname": args.domainname, "User": args.user,
        "AttachStdin": stdin, "AttachStdout": "stdout" in attach or not attach,
        "AttachStderr": "stderr" in attach or not attach,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({"Tty": args.tty, "OpenStdin": args.interactive, "StdinOnce": args.interactive and stdin,
                   "Env": env_values(args.env_file, args.env, environ), "Cmd": command or None})
    health = _healthcheck(args, values["health"])
    if health is not None:
        config["Healthcheck"] = health
    entrypoint = [args.entrypoint] if "entrypoint" in args.explicit else None
    config.update({"Image": image, "Volumes": volumes, "WorkingDir": args.workdir, "Entrypoint": entrypoint})
    if args.mac_address:
        config["MacAddress"] = args.mac_address
    config.update({"OnBuild": None, "Labels": label_values(args.label_file, args.label)})
    if "stop_signal" in args.explicit:
        config["StopSignal"] = args.stop_signal
    if "stop_timeout" in args.explicit:
        config["StopTimeout"] = args.stop_timeout
    return config


def _volume_source(spec: str) -> str:
    """The source part of a ``-v`` spec (``""`` for an anonymous volume such as ``/data``)."""
    parts = spec.split(":")
    return parts[0] if len(parts) > 1 else ""


def _namespace_modes(args: Namespace) -> None:
    if args.pid and args.pid != "host" and not (args.pid.startswith("container:") and args.pid[10:]):
        raise OptionError("--pid: invalid PID mode")
    if args.uts and args.uts != "host":
        raise OptionError("--uts: invalid UTS mode")
    if args.userns and args.userns != "host":
        raise OptionError("--userns: invalid USER mode")
    if args.cgroupns and args.cgroupns not in ("host", "private"):
        raise OptionError("--cgroupns: invalid CGROUP mode")


def _host_config(args: Namespace, values: dict[str, Any], bindings: dict[str, Any]) -> dict[str, Any]:
    _namespace_modes(args)
    if args.memory_swappiness != -1 and not 0 <= args.memory_swappiness <= 100:
        raise OptionError(f"invalid value: {args.memory_swappiness}. Valid memory swappiness range is 0-100")
    restart = restart_policy(args.restart)
    if args.rm and restart["Name"] not in ("", "no"):
        raise OptionError("Conflicting options: --restart and --rm")
    devices = [device_mapping(spec) for spec in args.device]
    for rule in args.device_cgroup_rule or []:
        if not DEVICE_CGROUP_RULE.fullmatch(rule):
            raise bad_flag("--device-cgroup-rule", rule, f"invalid device cgroup format '{rule}'")
    secopts, masked, readonly = security_opts(args.security_opt)
    if args.log_driver == "none" and args.log_opt:
        raise OptionError("invalid logging opts for driver none")
    networks = args.network + args.net
    host: dict[str, Any] = {
        # docker's CLI collects -v values in a map: the same spec twice is one bind, not a duplicate
        "Binds": list(dict.fromkeys(v for v in args.volume if _volume_source(v) != "")) or None,
        "ContainerIDFile": args.cidfile,
        "LogConfig": {"Type": args.log_driver, "Config": dict(sorted(split_kv(v) for v in args.log_opt))},
        "NetworkMode": network_attachment(networks[0])[0] if networks else "default",
        "PortBindings": bindings, "RestartPolicy": restart, "AutoRemove": args.rm,
        "VolumeDriver": args.volume_driver, "VolumesFrom": args.volumes_from or None,
        "CapAdd": args.cap_add or None, "CapDrop": args.cap_drop or None, "CgroupnsMode": args.cgroupns,
        "Dns": values["dns"], "DnsOptions": args.dns_option, "DnsSearch": values["dns_search"],
        "ExtraHosts": values["extra_hosts"], "GroupAdd": args.group_add or None, "IpcMode": args.ipc,
        "Cgroup": "", "Links": values["links"], "OomScoreAdj": args.oom_score_adj, "PidMode": args.pid,
        "Privileged": args.privileged, "PublishAllPorts": args.publish_all, "ReadonlyRootfs": args.read_only,
        "SecurityOpt": secopts,
    }
    storage: dict[str, str] = {}
    for opt in args.storage_opt:
        if "=" not in opt:
            raise OptionError("invalid storage option")
        storage.update([split_kv(opt)])
    if storage:
        host["StorageOpt"] = dict(sorted(storage.items()))
    tmpfs = dict(sorted(split_kv(spec, ":") for spec in args.tmpfs))
    if tmpfs:
        host["Tmpfs"] = tmpfs
    host.update({"UTSMode": args.uts, "UsernsMode": args.userns, "ShmSize": values["shm_size"]})
    if values["sysctls"]:
        host["Sysctls"] = values["sysctls"]
    if args.runtime:
        host["Runtime"] = args.runtime
    host.update({"ConsoleSize": [0, 0], "Isolation": args.isolation})
    host.update(_resources(args, values, devices))
    if values["mounts"]:
        host["Mounts"] = values["mounts"]
    host.update({"MaskedPaths": masked, "ReadonlyPaths": readonly})
    if "init" in args.explicit:
        host["Init"] = args.init
    return host


def _resources(args: Namespace, values: dict[str, Any], devices: list[dict[str, str]]) -> dict[str, Any]:
    if not 0 <= args.blkio_weight <= 0xFFFF:
        raise bad_flag("--blkio-weight", str(args.blkio_weight),
                       f'strconv.ParseUint: parsing "{args.blkio_weight}": value out of range')
    gpus = None
    if args.gpus:
        count = -1 if args.gpus == "all" else go_int("--gpus", args.gpus.removeprefix("count="))
        gpus = [{"Driver": "", "Count": count, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]
    return {
        "CpuShares": args.cpu_shares, "Memory": values["memory"], "NanoCpus": values["nano_cpus"],
        "CgroupParent": args.cgroup_parent, "BlkioWeight": args.blkio_weight, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None, "CpuPeriod": args.cpu_period, "CpuQuota": args.cpu_quota,
        "CpuRealtimePeriod": args.cpu_rt_period, "CpuRealtimeRuntime": args.cpu_rt_runtime,
        "CpusetCpus": args.cpuset_cpus, "CpusetMems": args.cpuset_mems, "Devices": devices,
        "DeviceCgroupRules": args.device_cgroup_rule or None, "DeviceRequests": gpus,
        "KernelMemory": values["kernel_memory"], "KernelMemoryTCP": 0,
        "MemoryReservation": values["memory_reservation"], "MemorySwap": values["memory_swap"],
        "MemorySwappiness": args.memory_swappiness, "OomKillDisable": args.oom_kill_disable,
        "PidsLimit": args.pids_limit, "Ulimits": values["ulimits"], "CpuCount": 0, "CpuPercent": 0,
        "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    }


def _endpoints(args: Namespace) -> dict[str, Any]:
    """``NetworkingConfig.EndpointsConfig``: the first network carries ``--network-alias``, ``--link``,
    ``--ip``, ``--ip6`` and ``--link-local-ip``; a lone network without settings is left out."""
    networks = [network_attachment(spec) for spec in args.network + args.net]
    aliases = args.network_alias + args.net_alias
    endpoints: dict[str, Any] = {}
    kinds = set()
    for index, (name, own_aliases, driver_opts) in enumerate(networks):
        user_defined = name not in ("default", "bridge", "host", "none") and not name.startswith("container:")
        kinds.add(user_defined)
        links: list[str] | None = None
        ipam: dict[str, Any] | None = None
        if index == 0:
            if own_aliases and aliases:
                raise OptionError("conflicting options: cannot specify both --network-alias and per-network alias")
            own_aliases = own_aliases or list(aliases)
            links = list(args.link) or None
            ipam = {k: v for k, v in (("IPv4Address", args.ip), ("IPv6Address", args.ip6),
                                      ("LinkLocalIPs", args.link_local_ip)) if v} or None
        if not user_defined and own_aliases:
            raise OptionError("network-scoped aliases are only supported for user-defined networks")
        if not user_defined and links:
            raise OptionError("links are only supported for user-defined networks")
        if name in endpoints:
            raise OptionError(f'network "{name}" is specified multiple times')
        if len(networks) == 1 and not (own_aliases or links or ipam or driver_opts):
            continue
        endpoints[name] = {"IPAMConfig": ipam, "Links": links, "Aliases": own_aliases or None, "NetworkID": "",
                           "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                           "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                           "MacAddress": "", "DriverOpts": dict(sorted(driver_opts.items())) or None}
    if len(kinds) > 1:
        raise OptionError("conflicting options: cannot attach both user-defined and non-user-defined "
                          "network-modes")
    return dict(sorted(endpoints.items()))


# ----- value syntaxes (docker's opts package and the go-units / go-connections rules) -------------------


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


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double quotes, backslash escapes for quotes and control characters."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif not char.isprintable() and char != " ":
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


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


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000}


def duration_ns(flag: str, value: str) -> int:
    """A Go duration flag (``1m30s``, ``500ms``) in nanoseconds; 0 when not given."""
    if not value or value in ("0", "+0", "-0"):
        return 0
    body = value.lstrip("+-")
    sign = -1 if value.startswith("-") else 1
    total, pos = 0, 0
    for match in re.finditer(r"(\d*\.?\d*)([^\d.]*)", body):
        if match.start() != pos or not match.group(0):
            break
        number, unit = match.groups()
        if number in ("", "."):
            raise bad_flag(flag, value, f'time: invalid duration "{value}"')
        if not unit:
            raise bad_flag(flag, value, f'time: missing unit in duration "{value}"')
        if unit not in _DURATION_UNITS:
            raise bad_flag(flag, value, f'time: unknown unit "{unit}" in duration "{value}"')
        total += round(float(number) * _DURATION_UNITS[unit])
        pos = match.end()
    if pos != len(body) or not body:
        raise bad_flag(flag, value, f'time: invalid duration "{value}"')
    return sign * total


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


def port_range(text: str) -> tuple[int, int]:
    """go-connections ``ParsePortRange``: ``80`` or ``7000-7010`` -> (first, last); raises ValueError with
    its message (``strconv.ParseUint: parsing "x": invalid syntax``)."""
    if not text:
        raise ValueError("Empty string specified for ports.")
    start_text, dash, end_text = text.partition("-")
    start = _uint16(start_text)
    if not dash:
        return start, start
    end = _uint16(end_text.split("-")[0])
    if end < start:
        raise ValueError(f"Invalid range specified for the Port: {text}")
    return start, end


def _uint16(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def _split_proto(text: str) -> tuple[str, str]:
    port, _, proto = text.partition("/")
    return port, (proto.split("/")[0] or "tcp")


def _host_ip(raw: str) -> str:
    """The host address part of a ``-p`` spec: brackets stripped from IPv6, checked as an IP."""
    import ipaddress
    if not raw:
        return ""
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise OptionError(f"Invalid ip address {raw}: address {raw}:: missing ']' in address")
        ip = raw[1:-1]
    elif ":" in raw:
        raise OptionError(f"Invalid ip address {raw}: address {raw}:: too many colons in address")
    else:
        ip = raw
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise OptionError(f"Invalid ip address: {ip}") from None
    return ip


def _long_publish(spec: str) -> str:
    """``target=80,published=8080,protocol=udp`` -> ``8080:80/udp``."""
    params = {"protocol": "tcp"}
    for param in spec.split(","):
        key, eq, value = param.partition("=")
        if not eq:
            raise OptionError(f"invalid publish opts format (should be name=value but got '{param}')")
        params[key] = value
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def _publish_mappings(spec: str) -> list[tuple[str, dict[str, str]]]:
    """One ``-p [ip:][hostPort:]containerPort[/proto]`` spec -> ``[(port/proto, binding)]``."""
    parts = spec.split(":")
    container = parts[-1]
    host_port = parts[-2] if len(parts) > 1 else ""
    raw_ip = ":".join(parts[:-2])
    port, proto = _split_proto(container)
    ip = _host_ip(raw_ip)
    if not port:
        raise OptionError(f"No port specified: {spec}<empty>")
    try:
        start, end = port_range(port)
    except ValueError:
        raise OptionError(f"Invalid containerPort: {port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = port_range(host_port)
        except ValueError:
            raise OptionError(f"Invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise OptionError(f"Invalid ranges specified for container and host Ports: {port} and {host_port}")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise OptionError(f"Invalid proto: {proto}")
    out = []
    for offset in range(end - start + 1):
        published = str(host_start + offset) if host_port else ""
        if start == end and host_start != host_end:
            published = f"{host_start}-{host_end}"
        out.append((f"{start + offset}/{proto.lower()}", {"HostIp": ip, "HostPort": published}))
    return out


def port_bindings(publish: list[str], expose: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``-p`` and ``--expose`` -> (``Config.ExposedPorts``, ``HostConfig.PortBindings``), keys sorted."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        for key, binding in _publish_mappings(_long_publish(spec) if "=" in spec else spec):
            exposed[key] = {}
            bindings.setdefault(key, []).append(binding)
    for spec in expose:
        if ":" in spec:
            raise OptionError(f"invalid port format for --expose: {spec}")
        port, proto = _split_proto(spec)
        try:
            start, end = port_range(port)
        except ValueError as exc:
            raise OptionError(f"invalid range format for --expose: {spec}, error: {exc}") from None
        for number in range(start, end + 1):
            exposed.setdefault(f"{number}/{proto.lower()}", {})
    return dict(sorted(exposed.items())), dict(sorted(bindings.items()))


_MOUNT_BOOLS = {"readonly", "ro", "volume-nocopy", "bind-nonrecursive"}


def _go_bool(key: str, value: str) -> bool:
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def _mount_field(mount: dict[str, Any], key: str, value: str) -> None:
    if key == "type":
        mount["Type"] = value.lower()
    elif key in ("source", "src"):
        mount["Source"] = value
    elif key in ("target", "dst", "destination"):
        mount["Target"] = value
    elif key in ("readonly", "ro"):
        mount["ReadOnly"] = _go_bool(key, value)
    elif key == "consistency":
        mount["Consistency"] = value.lower()
    elif key == "bind-propagation":
        mount.setdefault("BindOptions", {})["Propagation"] = value.lower()
    elif key == "bind-nonrecursive":
        mount.setdefault("BindOptions", {})["NonRecursive"] = _go_bool(key, value)
    elif key == "volume-nocopy":
        mount.setdefault("VolumeOptions", {})["NoCopy"] = _go_bool(key, value)
    elif key == "volume-label":
        mount.setdefault("VolumeOptions", {}).setdefault("Labels", {}).update([split_kv(value)])
    elif key == "volume-driver":
        mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value
    elif key == "volume-opt":
        driver = mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})
        driver.setdefault("Options", {}).update([split_kv(value)])
    elif key == "tmpfs-size":
        try:
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
        except ValueError:
            raise ValueError(f"invalid value for {key}: {value}") from None
    elif key == "tmpfs-mode":
        if not re.fullmatch(r"[0-7]+", value) or int(value, 8) >= 1 << 32:
            raise ValueError(f"invalid value for {key}: {value}")
        mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
    else:
        raise ValueError(f"unexpected key '{key}' in '{key}={value}'")


def mount_spec(spec: str) -> dict[str, Any]:
    """``--mount type=bind,src=/a,dst=/b,readonly`` -> a ``HostConfig.Mounts`` item (docker's CSV syntax)."""
    import csv
    mount: dict[str, Any] = {"Type": "volume"}
    try:
        fields = next(csv.reader([spec]), [])
        for item in fields:
            key, eq, value = item.partition("=")
            key = key.lower()
            if not eq:
                if key not in _MOUNT_BOOLS:
                    raise ValueError(f"invalid field '{item}' must be a key=value pair")
                value = "true"
            _mount_field(mount, key, value)
        if not mount.get("Target"):
            raise ValueError("target is required")
        for prefix, part in (("volume", "VolumeOptions"), ("bind", "BindOptions"), ("tmpfs", "TmpfsOptions")):
            if part in mount and mount["Type"] != prefix:
                raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{mount['Type']}'")
    except (ValueError, csv.Error) as exc:
        raise bad_flag("--mount", spec, str(exc)) from None
    return _go_struct(mount, ("Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
                              "VolumeOptions", "TmpfsOptions", "Propagation", "NonRecursive", "NoCopy",
                              "Labels", "DriverConfig", "Name", "Options", "SizeBytes", "Mode"))


def _go_struct(value: Any, order: tuple[str, ...]) -> Any:
    """Lay out nested struct fields in Go declaration ``order`` (omitempty: empty values dropped); the
    ``Labels`` and ``Options`` maps are sorted by key as Go's JSON encoder does."""
    out = {}
    for key in order:
        if key in value and value[key] not in (None, "", False, {}):
            item = value[key]
            if key in ("Labels", "Options"):
                item = dict(sorted(item.items()))
            elif isinstance(item, dict):
                item = _go_struct(item, order)
            out[key] = item
    return out


def _clean_path(path: str) -> str:
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


# the docker CLI's check of --device-cgroup-rule: type, major:minor (or *), access
DEVICE_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")


def _device_mode(mode: str) -> bool:
    return 0 < len(mode) <= 3 and all(c in "rwm" for c in mode) and len(set(mode)) == len(mode)


def device_mapping(spec: str) -> dict[str, str]:
    """``--device /dev/x[:/dev/y][:rwm]`` -> ``{"PathOnHost", "PathInContainer", "CgroupPermissions"}``
    (paths cleaned as docker's ``validateDevice`` does, except in the three-part form)."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0]:
        raise OptionError(f"bad format for path: {spec}")
    if len(parts) == 3:
        host, inside, mode = parts
        if not _device_mode(mode):
            raise OptionError(f"bad mode specified: {mode}")
        _absolute(inside)
    elif len(parts) == 2 and not _device_mode(parts[1]):
        host, inside, mode = parts[0], _absolute(parts[1]), "rwm"
    else:
        host = inside = _absolute(parts[0])
        mode = parts[1] if len(parts) == 2 else "rwm"
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": mode}


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise OptionError(f"{path} is not an absolute path")
    return _clean_path(path)


def security_opts(values: list[str]) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """``--security-opt`` list -> (SecurityOpt, MaskedPaths, ReadonlyPaths); a seccomp profile file is
    inlined as compact JSON; ``systempaths=unconfined`` empties the masked and read-only path lists."""
    if not values:
        return None, None, None
    out: list[str] = []
    masked: list[str] | None = None
    readonly: list[str] | None = None
    for opt in values:
        key, eq, value = opt.partition("=")
        if not eq and opt != "no-new-privileges":
            if ":" not in opt:
                raise OptionError(f"Invalid --security-opt: {go_quote(opt)}")
            key, _, value = opt.partition(":")
        if opt == "systempaths=unconfined":
            masked, readonly = [], []
            continue
        if key == "seccomp" and value != "unconfined":
            import json
            try:
                with open(value, encoding="utf-8") as f:
                    profile = json.load(f)
            except OSError as exc:
                raise OptionError(f"opening seccomp profile ({value}) failed: open {value}: "
                                  f"{(exc.strerror or str(exc)).lower()}") from None
            except ValueError as exc:
                raise OptionError(f"compacting json for seccomp profile ({value}) failed: {exc}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"), ensure_ascii=False)
        out.append(opt)
    return out, masked, readonly


def network_attachment(spec: str) -> tuple[str, list[str], dict[str, str]]:
    """``--network NAME`` or ``--network name=N,alias=A,driver-opt=k=v`` -> (name, aliases, driver opts)."""
    if not re.search(r"\w+=\w+(,\w+=\w+)*", spec):
        return spec, [], {}
    import csv
    name, aliases, driver_opts = "", [], {}
    for item in next(csv.reader([spec]), []):
        key, eq, value = item.partition("=")
        if not eq:
            raise bad_flag("--network", spec, f"invalid field {item}")
        key, value = key.strip().lower(), value.strip().lower()
        if key == "name":
            name = value
        elif key == "alias":
            aliases.append(value)
        elif key == "driver-opt":
            opt_key, opt_eq, opt_value = value.partition("=")
            if not opt_eq:
                raise bad_flag("--network", spec, "invalid key value pair format in driver options")
            driver_opts[opt_key.strip()] = opt_value.strip()
        else:
            raise bad_flag("--network", spec, f"invalid field key {key}")
    if not name:
        raise bad_flag("--network", spec, "network name/id is not specified")
    return name, aliases, driver_opts


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
