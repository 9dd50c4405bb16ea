"""OCI config generation: the values docker 20.10 gives runc for the same ``docker run`` options."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.runtime import caps
from berth.runtime.spec import (
    DEFAULT_PATH,
    Mount,
    SpecOptions,
    Ulimit,
    default_env,
    generate_spec,
    parse_ulimit,
)

DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def spec(**kw) -> dict:
    kw.setdefault("args", ["sh"])
    return generate_spec(SpecOptions(**kw))


def test_defaults() -> None:
    s = spec(env=["PATH=/bin"], hostname="h1", container_id="abc")
    assert s["ociVersion"] == "1.0.2-dev"
    assert s["root"] == {"path": "rootfs", "readonly": False}
    assert s["hostname"] == "h1"
    p = s["process"]
    assert p["terminal"] is False
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["args"] == ["sh"] and p["env"] == ["PATH=/bin"] and p["cwd"] == "/"
    assert p["capabilities"] == {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]
    assert p["noNewPrivileges"] is False
    assert p["oomScoreAdj"] == 0
    linux = s["linux"]
    assert linux["cgroupsPath"] == "/berth/abc"
    assert linux["namespaces"] == [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
    assert linux["maskedPaths"] == [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap"]
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    assert linux["resources"] == {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]}
    assert "devices" not in linux and "sysctl" not in linux
    seccomp = linux["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_default_mounts() -> None:
    assert spec()["mounts"] == [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def test_user_mounts_after_defaults_parents_first_and_replacing() -> None:
    mounts = spec(shm_size=2 * 1024 * 1024, mounts=[
        Mount("/etc/resolv.conf", "/c/resolv.conf"),
        Mount("/data/sub", "/v/sub", options=("rbind", "ro")),
        Mount("/data", "/v/data"),
        Mount("/dev/shm", "/c/shm"),
        Mount("/run", "tmpfs", "tmpfs", ("noexec", "nosuid", "nodev", "size=1m")),
    ])["mounts"]
    destinations = [m["destination"] for m in mounts]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                            "/data", "/run", "/etc/resolv.conf", "/data/sub", "/dev/shm"]
    assert mounts[-1] == {"destination": "/dev/shm", "type": "bind", "source": "/c/shm",
                          "options": ["rbind", "rprivate"]}
    assert mounts[7] == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                         "options": ["noexec", "nosuid", "nodev", "size=1m"]}


def test_shm_size() -> None:
    shm = spec(shm_size=128 * 1024 * 1024)["mounts"][-1]
    assert shm["options"][-1] == "size=131072k"


def test_user_and_terminal() -> None:
    s = spec(uid=1000, gid=50, additional_gids=[10, 20], tty=True, cwd="/work")
    assert s["process"]["user"] == {"uid": 1000, "gid": 50, "additionalGids": [10, 20]}
    assert s["process"]["terminal"] is True
    assert s["process"]["cwd"] == "/work"


def test_privileged() -> None:
    devices = [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660, "uid": 0, "gid": 6}]
    s = spec(privileged=True, devices=devices)
    assert s["process"]["capabilities"]["bounding"] == list(caps.CAPABILITIES)
    linux = s["linux"]
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert linux["devices"] == devices
    sys_mounts = [m for m in s["mounts"] if m["destination"] in ("/sys", "/sys/fs/cgroup")]
    assert all("ro" not in m["options"] for m in sys_mounts)


def test_privileged_limited_to_held_capabilities() -> None:
    held = [c for c in caps.CAPABILITIES if c != "CAP_SYS_RESOURCE"]
    assert spec(privileged=True, all_capabilities=held)["process"]["capabilities"]["effective"] == held


@pytest.mark.parametrize("add, drop, expected", [
    ([], [], DOCKER_CAPS),
    (["NET_ADMIN"], [], DOCKER_CAPS + ["CAP_NET_ADMIN"]),
    (["cap_sys_admin", "Sys_Time"], ["mknod", "CAP_NET_RAW"],
     [c for c in DOCKER_CAPS if c not in ("CAP_MKNOD", "CAP_NET_RAW")] + ["CAP_SYS_ADMIN", "CAP_SYS_TIME"]),
    (["chown"], [], DOCKER_CAPS),
    ([], ["ALL"], []),
    (["NET_BIND_SERVICE", "chown"], ["all"], ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]),
    (["ALL"], ["SYS_ADMIN"], [c for c in caps.CAPABILITIES if c != "CAP_SYS_ADMIN"]),
    (["all"], [], list(caps.CAPABILITIES)),
])
def test_cap_add_drop(add: list[str], drop: list[str], expected: list[str]) -> None:
    assert spec(cap_add=add, cap_drop=drop)["process"]["capabilities"]["bounding"] == expected


def test_unknown_capability() -> None:
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_FOO"'):
        spec(cap_add=["foo"])


def test_seccomp_follows_capabilities() -> None:
    def allowed(s: dict) -> set[str]:
        return {n for r in s["linux"]["seccomp"]["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
                and not r.get("args") for n in r["names"]}
    default, admin = spec(), spec(cap_add=["SYS_ADMIN"])
    assert "mount" not in allowed(default) and "mount" in allowed(admin)
    assert "unshare" not in allowed(default) and "unshare" in allowed(admin)
    clone3 = [r for r in default["linux"]["seccomp"]["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    assert not [r for r in admin["linux"]["seccomp"]["syscalls"] if r.get("errnoRet") == 38]
    assert "seccomp" not in spec(seccomp_profile="unconfined")["linux"]


def test_custom_seccomp_profile() -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"},
                            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    assert spec(seccomp_profile=profile)["linux"]["seccomp"] == {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": [],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}


@pytest.mark.parametrize("kw, namespaces", [
    ({"network": "host"}, ["pid", "ipc", "uts", "mount", "cgroup"]),
    ({"pid": "host", "ipc": "host", "uts": "host", "cgroupns": "host"}, ["network", "mount"]),
])
def test_host_namespaces(kw: dict, namespaces: list[str]) -> None:
    assert [ns["type"] for ns in spec(**kw)["linux"]["namespaces"]] == namespaces


def test_join_network_namespace() -> None:
    namespaces = spec(network="/proc/42/ns/net")["linux"]["namespaces"]
    assert {"type": "network", "path": "/proc/42/ns/net"} in namespaces


def test_bad_namespace_mode() -> None:
    with pytest.raises(InvalidParameter):
        spec(network="bridge")


@pytest.mark.parametrize("kw, resources", [
    ({"memory": 32 << 20}, {"memory": {"limit": 32 << 20, "swap": 64 << 20}}),
    ({"memory": 32 << 20, "memory_swap": -1}, {"memory": {"limit": 32 << 20, "swap": -1}}),
    ({"memory": 32 << 20, "memory_swap": 48 << 20, "memory_reservation": 16 << 20},
     {"memory": {"limit": 32 << 20, "swap": 48 << 20, "reservation": 16 << 20}}),
    ({"cpu_shares": 512, "cpu_quota": 50000, "cpu_period": 100000, "cpuset_cpus": "0-1"},
     {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"}}),
    ({"pids_limit": 100}, {"pids": {"limit": 100}}),
    ({"memory_swappiness": 10, "oom_kill_disable": True}, {"memory": {"swappiness": 10, "disableOOMKiller": True}}),
    ({"memory_swappiness": None}, {}),
])
def test_resources(kw: dict, resources: dict) -> None:
    got = spec(**kw)["linux"]["resources"]
    del got["devices"]
    assert got == resources


def test_device_cgroup_rules_and_devices() -> None:
    fuse = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}
    rule = {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rwm"}
    linux = spec(devices=[fuse], device_cgroup_rules=[rule])["linux"]
    assert linux["devices"] == [fuse]
    assert linux["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"}, rule]


def test_process_options() -> None:
    s = spec(no_new_privileges=True, oom_score_adj=500, readonly_rootfs=True, sysctls={"net.core.somaxconn": "1024"},
             ulimits=[Ulimit("nofile", 1024, 2048), Ulimit("nproc", 10, 10)], nofile=20000)
    assert s["process"]["noNewPrivileges"] is True and s["process"]["oomScoreAdj"] == 500
    assert s["root"]["readonly"] is True
    assert s["linux"]["sysctl"] == {"net.core.somaxconn": "1024"}
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
                                       {"type": "RLIMIT_NPROC", "hard": 10, "soft": 10}]
    assert spec(nofile=20000)["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]


@pytest.mark.parametrize("text, ulimit", [
    ("nofile=1024", Ulimit("nofile", 1024, 1024)),
    ("nofile=1024:2048", Ulimit("nofile", 1024, 2048)),
    ("core=-1", Ulimit("core", -1, -1)),
    ("nproc=10:-1", Ulimit("nproc", 10, -1)),
])
def test_parse_ulimit(text: str, ulimit: Ulimit) -> None:
    assert parse_ulimit(text) == ulimit


@pytest.mark.parametrize("text, message", [
    ("nofile", "invalid ulimit argument: nofile"),
    ("foo=1", "invalid ulimit type: foo"),
    ("nofile=2048:1024", "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
    ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
    ("nofile=x", "invalid ulimit value: x"),
])
def test_parse_ulimit_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_ulimit(text)
    assert info.value.message == message


@pytest.mark.parametrize("image_env, tty, home, expected", [
    ([], False, "/root", [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "HOME=/root"]),
    ([], True, "/", [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "TERM=xterm", "HOME=/"]),
    (["PATH=/opt/bin", "A=1"], False, "/root", ["PATH=/opt/bin", "HOSTNAME=h", "A=1", "HOME=/root"]),
    (["HOME=/srv", "TERM=dumb"], True, "/root", [f"PATH={DEFAULT_PATH}", "HOSTNAME=h", "TERM=dumb", "HOME=/srv"]),
    (["HOSTNAME=custom"], False, "", [f"PATH={DEFAULT_PATH}", "HOSTNAME=custom", "HOME=/"]),
])
def test_default_env(image_env: list[str], tty: bool, home: str, expected: list[str]) -> None:
    assert default_env(image_env, tty, "h", home) == expected


@pytest.mark.parametrize("mount, options", [
    (Mount.bind("/h", "/c"), ("rbind", "rprivate")),
    (Mount.bind("/h", "/c", readonly=True), ("rbind", "rprivate", "ro")),
    (Mount.bind("/h", "/c", propagation="rslave"), ("rbind", "rslave")),
    (Mount.tmpfs("/run"), ("noexec", "nosuid", "nodev")),
    (Mount.tmpfs("/run", "rw,size=64m"), ("noexec", "nosuid", "nodev", "rw", "size=64m")),
    (Mount.tmpfs("/run", "exec,mode=1777"), ("nosuid", "nodev", "exec", "mode=1777")),
])
def test_mount_helpers(mount: Mount, options: tuple[str, ...]) -> None:
    assert mount.options == options
