"""The flags of ``run`` and ``create``, and the Engine API create request they make.

Sources: docker CLI reference "docker run" / "docker create" (flag names, types, defaults), Engine API
v1.41 "ContainerCreate" (request body: Config fields, ``HostConfig``, ``NetworkingConfig``). The body
is laid out field for field as the docker 20.10 CLI sends it (zero values included, keys in the same
order, omitted where docker omits empty values), so a daemon sees the same request from either CLI.

This module holds the flag table and the body assembly; the value syntaxes are parsed in
:mod:`berth.cli.runvalues` (sizes, durations, env files, validators) and :mod:`berth.cli.runspecs`
(``-p``, ``--mount``, ``--device``, ``--security-opt``, ``--network``), as docker's ``opts`` package
accepts them. Errors are :class:`~berth.cli.runvalues.OptionError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth.cli.flags import FlagSet, Namespace
from berth.cli.runspecs import (
    DEVICE_CGROUP_RULE,
    absolute_bind,
    device_mapping,
    mount_spec,
    network_attachment,
    port_bindings,
    security_opts,
    volume_source,
)
from berth.cli.runvalues import (
    OptionError,
    bad_flag,
    duration_ns,
    env_values,
    go_int,
    label_values,
    memory_bytes,
    nano_cpus,
    restart_policy,
    split_kv,
    ulimit,
    validate_add_host,
    validate_dns,
    validate_dns_search,
    validate_link,
    validate_mac,
    validate_sysctl,
)

__all__ = ["CreateRequest", "add_create_flags", "build_create_request"]

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
        if volume_source(spec) == "":
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
        "Binds": list(dict.fromkeys(absolute_bind(v) for v in args.volume if volume_source(v) != "")) or None,
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
