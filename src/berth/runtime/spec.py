"""OCI runtime ``config.json`` generation, sans-I/O: ``docker run`` options in, a dict out.

The output is what docker 20.10 hands runc for the same options (runtime-spec v1.0.2,
config.md and config-linux.md): docker's default mounts, 14 capabilities, masked and read-only
paths, device cgroup allow list, ``RLIMIT_NOFILE`` 1048576 (what dockerd's unit gives its
containers), and the default seccomp profile filtered for the container's capabilities.
Anything that needs the host (image users, host devices, kernel version) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidParameter
from berth.runtime import caps as capabilities
from berth.runtime import seccomp

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_NOFILE = 1048576

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# docker's device cgroup rules: deny all, then null zero urandom random tty console; fuse denied.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)

# --ulimit names (go-units) -> OCI rlimit types.
ULIMIT_NAMES = {name: f"RLIMIT_{name.upper()}" for name in (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack")}
ULIMIT_NAMES["as"] = "RLIMIT_AS"

NAMESPACE_TYPES = ("pid", "network", "ipc", "uts", "mount", "cgroup")


@dataclass(frozen=True)
class Mount:
    """One OCI mount: ``destination`` in the container, ``type`` (bind, tmpfs...), ``source``,
    mount(8) ``options`` (``rbind``, ``ro``, ``rprivate``, ``size=64m``...)."""

    destination: str
    source: str
    type: str = "bind"
    options: tuple[str, ...] = ("rbind", "rprivate")

    @classmethod
    def bind(cls, source: str, destination: str, readonly: bool = False,
             propagation: str = "rprivate") -> Mount:
        """A bind mount as docker writes it for ``-v``/``--mount type=bind`` and the files it
        provides (``/etc/hosts``...): ``rbind``, the propagation, ``ro`` when read-only."""
        return cls(destination, source, "bind", ("rbind", propagation, *(("ro",) if readonly else ())))

    @classmethod
    def tmpfs(cls, destination: str, options: str = "") -> Mount:
        """``--tmpfs DEST[:OPTIONS]``: docker's defaults ``noexec,nosuid,nodev`` unless the
        options say otherwise (``exec``...), then the options as given (``size=64m,mode=1777``)."""
        given = [o for o in options.split(",") if o]
        opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
        defaults = [d for d in ("noexec", "nosuid", "nodev") if d not in {opposite.get(o) for o in given}]
        return cls(destination, "tmpfs", "tmpfs", (*defaults, *given))

    def to_oci(self) -> dict[str, Any]:
        """The OCI ``mounts[]`` entry."""
        return {"destination": self.destination, "type": self.type, "source": self.source,
                "options": list(self.options)}


@dataclass(frozen=True)
class Ulimit:
    """A ``--ulimit``: ``name`` as docker spells it (``nofile``), soft and hard limits."""

    name: str
    soft: int
    hard: int


@dataclass
class SpecOptions:
    """The ``docker run`` settings that shape a container's OCI config.

    ``env`` is the final environment (see :func:`default_env`); ``uid``/``gid``/
    ``additional_gids`` come from :func:`berth.runtime.user.resolve_user`. Namespace modes
    (``network``, ``pid``, ``ipc``, ``uts``, ``cgroupns``): ``"private"``, ``"host"``, or a path
    such as ``/proc/<pid>/ns/net`` to join. Memory sizes in bytes; ``memory_swap`` is memory plus
    swap (-1 unlimited, 0 = twice ``memory``); ``memory_swappiness`` 0-100 (``None``: the kernel's);
    ``oom_kill_disable``: the OOM killer leaves the cgroup alone (v1 only). ``seccomp_profile``: ``None`` for docker's default,
    ``"unconfined"``, or a docker-format profile dict. ``devices``: OCI ``linux.devices`` entries
    (:func:`berth.runtime.devices.host_devices` for ``privileged``). ``kernel``: (major, minor)
    for the profile's ``minKernel`` filters. ``nofile``: the default ``RLIMIT_NOFILE`` (soft and
    hard) when no ``--ulimit nofile`` is given; a daemon without ``CAP_SYS_RESOURCE`` passes
    :func:`berth.runtime.linux.nofile_ceiling` so runtimes can apply it. ``all_capabilities``:
    what ``--privileged`` and ``--cap-add ALL`` grant (default every capability); a daemon that
    holds fewer passes :func:`berth.runtime.linux.held_capabilities`, as no runtime can grant more.
    """

    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    tty: bool = False
    hostname: str = ""
    container_id: str = ""
    cgroup_parent: str = "/berth"
    readonly_rootfs: bool = False
    mounts: list[Mount] = field(default_factory=list)
    shm_size: int = DEFAULT_SHM_SIZE
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    all_capabilities: list[str] | None = None
    ulimits: list[Ulimit] = field(default_factory=list)
    nofile: int = DEFAULT_NOFILE
    no_new_privileges: bool = False
    oom_score_adj: int = 0
    network: str = "private"
    pid: str = "private"
    ipc: str = "private"
    uts: str = "private"
    cgroupns: str = "private"
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    device_cgroup_rules: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    seccomp_profile: dict[str, Any] | str | None = None
    arch: str = "amd64"
    kernel: tuple[int, int] | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def default_env(image_env: list[str], tty: bool, hostname: str, user_home: str) -> list[str]:
    """The process environment docker builds: PATH (default when the image sets none), HOSTNAME,
    TERM=xterm with a tty, then ``image_env`` (image + ``-e``, overriding), then HOME from the
    user's passwd entry when still unset (``KEY=VALUE`` strings, order kept)."""
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if tty:
        env.append("TERM=xterm")
    for entry in image_env:
        key = _env_key(entry)
        positions = [i for i, e in enumerate(env) if _env_key(e) == key]
        if positions:
            env[positions[0]] = entry
        else:
            env.append(entry)
    if not any(_env_key(e) == "HOME" for e in env):
        env.append(f"HOME={user_home or '/'}")
    return env


def parse_ulimit(text: str) -> Ulimit:
    """Parse ``--ulimit name=soft[:hard]`` (docker's go-units rules and error texts).

    Raises :class:`InvalidParameter`, e.g. ``invalid ulimit type: foo``.
    """
    name, sep, limits = text.partition("=")
    if not sep:
        raise InvalidParameter(f"invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise InvalidParameter(f"invalid ulimit type: {name}")
    values = limits.split(":")
    if len(values) > 2:
        raise InvalidParameter(
            f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
    try:
        soft = int(values[0])
        hard = int(values[1]) if len(values) == 2 else soft
    except ValueError:
        raise InvalidParameter(f"invalid ulimit value: {limits}") from None
    if soft > hard and hard != -1:
        raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return Ulimit(name, soft, hard)


def _default_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    sys_ro = [] if opts.privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *sys_ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", *sys_ro]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={opts.shm_size // 1024}k"]},
    ]


def _mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    """docker's defaults, minus those a user mount replaces, then user mounts parents first."""
    user = sorted(opts.mounts, key=lambda m: len([p for p in m.destination.split("/") if p]))
    taken = {m.destination.rstrip("/") or "/" for m in user}
    defaults = [m for m in _default_mounts(opts) if m["destination"] not in taken]
    if "/dev" in taken:
        defaults = [m for m in defaults if not m["destination"].startswith("/dev/")]
    return defaults + [m.to_oci() for m in user]


def _namespaces(opts: SpecOptions) -> list[dict[str, Any]]:
    modes = {"pid": opts.pid, "network": opts.network, "ipc": opts.ipc, "uts": opts.uts,
             "mount": "private", "cgroup": opts.cgroupns}
    namespaces = []
    for kind in NAMESPACE_TYPES:
        mode = modes[kind]
        if mode == "host":
            continue
        if mode == "private":
            namespaces.append({"type": kind})
        elif mode.startswith("/"):
            namespaces.append({"type": kind, "path": mode})
        else:
            raise InvalidParameter(f"invalid {kind} namespace mode: {mode}")
    return namespaces


def _capabilities(caps: list[str]) -> dict[str, list[str]]:
    return {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}


def _rlimits(opts: SpecOptions) -> list[dict[str, Any]]:
    limits = {"RLIMIT_NOFILE": (opts.nofile, opts.nofile)}
    for ulimit in opts.ulimits:
        limits[ULIMIT_NAMES[ulimit.name]] = (ulimit.soft, ulimit.hard)
    return [{"type": kind, "hard": hard, "soft": soft} for kind, (soft, hard) in limits.items()]


def _resources(opts: SpecOptions) -> dict[str, Any]:
    if opts.privileged:
        devices: list[dict[str, Any]] = [{"allow": True, "access": "rwm"}]
    else:
        devices = [dict(rule) for rule in DEFAULT_DEVICE_RULES]
        # a device with its own rule (`--device X:Y:r`) gets only that access: v1 allow rules add up
        ruled = {(r.get("type"), r.get("major"), r.get("minor")) for r in opts.device_cgroup_rules}
        devices += [{"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"],
                     "access": "rwm"} for d in opts.devices if (d["type"], d["major"], d["minor"]) not in ruled]
        devices += [dict(rule) for rule in opts.device_cgroup_rules]
    resources: dict[str, Any] = {"devices": devices}
    memory: dict[str, Any] = {}
    if opts.memory:
        memory["limit"] = opts.memory
        memory["swap"] = opts.memory_swap or 2 * opts.memory
    if opts.memory_reservation:
        memory["reservation"] = opts.memory_reservation
    if opts.memory_swappiness is not None and 0 <= opts.memory_swappiness <= 100:
        memory["swappiness"] = opts.memory_swappiness
    if opts.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        resources["memory"] = memory
    cpu = {key: value for key, value in (
        ("shares", opts.cpu_shares), ("quota", opts.cpu_quota), ("period", opts.cpu_period),
        ("cpus", opts.cpuset_cpus), ("mems", opts.cpuset_mems)) if value}
    if cpu:
        resources["cpu"] = cpu
    if opts.pids_limit:
        resources["pids"] = {"limit": opts.pids_limit}
    return resources


def _seccomp(opts: SpecOptions, caps: list[str]) -> dict[str, Any] | None:
    if opts.privileged or opts.seccomp_profile == "unconfined":
        return None
    profile = opts.seccomp_profile if isinstance(opts.seccomp_profile, dict) else seccomp.default_profile()
    return seccomp.to_oci(profile, caps, opts.arch, opts.kernel)


def _linux(opts: SpecOptions, caps: list[str]) -> dict[str, Any]:
    linux: dict[str, Any] = {
        "resources": _resources(opts),
        "namespaces": _namespaces(opts),
        "maskedPaths": [] if opts.privileged else list(
            MASKED_PATHS if opts.masked_paths is None else opts.masked_paths),
        "readonlyPaths": [] if opts.privileged else list(
            READONLY_PATHS if opts.readonly_paths is None else opts.readonly_paths),
    }
    if opts.container_id:
        linux["cgroupsPath"] = f"{opts.cgroup_parent.rstrip('/')}/{opts.container_id}"
    if opts.devices:
        linux["devices"] = [dict(d) for d in opts.devices]
    if opts.sysctls:
        linux["sysctl"] = dict(opts.sysctls)
    profile = _seccomp(opts, caps)
    if profile is not None:
        linux["seccomp"] = profile
    return linux


def generate_spec(opts: SpecOptions) -> dict[str, Any]:
    """The OCI ``config.json`` object for ``opts`` (root path ``rootfs`` in the bundle).

    Raises :class:`InvalidParameter` for unknown capabilities or namespace modes.
    """
    caps = capabilities.tweak(opts.cap_add, opts.cap_drop, opts.privileged,
                              every=opts.all_capabilities or capabilities.CAPABILITIES)
    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": opts.uid, "gid": opts.gid},
        "args": list(opts.args),
        "env": list(opts.env),
        "cwd": opts.cwd or "/",
        "capabilities": _capabilities(caps),
        "rlimits": _rlimits(opts),
        "noNewPrivileges": opts.no_new_privileges,
        "oomScoreAdj": opts.oom_score_adj,
    }
    if opts.additional_gids:
        process["user"]["additionalGids"] = list(opts.additional_gids)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": "rootfs", "readonly": opts.readonly_rootfs},
        "hostname": opts.hostname,
        "mounts": _mounts(opts),
        "linux": _linux(opts, caps),
    }
    return spec
