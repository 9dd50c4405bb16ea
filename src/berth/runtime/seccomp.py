"""Docker's default seccomp profile and its conversion to the OCI ``linux.seccomp`` form.

The profile is docker's ("Seccomp security profiles for Docker"; ``profiles/seccomp/default.json``):
deny with EPERM by default, allow ~350 ordinary syscalls, allow a few more only with the
capability that makes them meaningful (``mount`` with ``CAP_SYS_ADMIN``...), restrict ``clone``
flags and ``personality`` values, and answer ``clone3`` with ENOSYS so libc falls back to ``clone``.

A docker-format profile has ``defaultAction``, ``archMap`` or ``architectures``, and ``syscalls``
entries with ``names`` (or ``name``), ``action``, ``args`` and ``includes``/``excludes`` filters
(``arches``, ``caps``, ``minKernel``). :func:`to_oci` applies the filters for one container and
returns the OCI form (runtime-spec config-linux.md, "Seccomp"), which :mod:`seccomp_bpf` compiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from berth.errors import InvalidParameter

_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd
eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername
getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32
getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link
linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs
statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev
"""

# Namespace-creating clone flags: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
_CLONE_NS_FLAGS = 0x7E020000
_ENOSYS = 38

# (syscall names, action, args, includes, excludes): docker's rules beyond the plain allow list.
_RULES: tuple[tuple[str, str, list[dict[str, Any]], dict[str, Any], dict[str, Any]], ...] = (
    ("process_vm_readv process_vm_writev ptrace", "SCMP_ACT_ALLOW", [], {"minKernel": "4.8"}, {}),
    ("socket", "SCMP_ACT_ALLOW", [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}], {}, {}),
    *(("personality", "SCMP_ACT_ALLOW", [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}], {}, {})
      for v in (0, 8, 131072, 131080, 4294967295)),
    ("sync_file_range2 swapcontext", "SCMP_ACT_ALLOW", [], {"arches": ["ppc64le"]}, {}),
    ("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
     "SCMP_ACT_ALLOW", [], {"arches": ["arm", "arm64"]}, {}),
    ("arch_prctl", "SCMP_ACT_ALLOW", [], {"arches": ["amd64", "x32"]}, {}),
    ("modify_ldt", "SCMP_ACT_ALLOW", [], {"arches": ["amd64", "x32", "x86"]}, {}),
    ("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", "SCMP_ACT_ALLOW", [],
     {"arches": ["s390", "s390x"]}, {}),
    ("open_by_handle_at", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_DAC_READ_SEARCH"]}, {}),
    ("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
     "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname "
     "sethostname setns syslog umount umount2 unshare", "SCMP_ACT_ALLOW", [],
     {"caps": ["CAP_SYS_ADMIN"]}, {}),
    ("clone", "SCMP_ACT_ALLOW", [{"index": 0, "value": _CLONE_NS_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
     {}, {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}),
    ("clone", "SCMP_ACT_ALLOW", [{"index": 1, "value": _CLONE_NS_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
     {"arches": ["s390", "s390x"]}, {"caps": ["CAP_SYS_ADMIN"]}),
    ("clone3", "SCMP_ACT_ERRNO", [], {}, {"caps": ["CAP_SYS_ADMIN"]}),
    ("reboot", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_BOOT"]}, {}),
    ("chroot", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_CHROOT"]}, {}),
    ("delete_module init_module finit_module", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_MODULE"]}, {}),
    ("acct", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_PACCT"]}, {}),
    ("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", "SCMP_ACT_ALLOW",
     [], {"caps": ["CAP_SYS_PTRACE"]}, {}),
    ("iopl ioperm", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_RAWIO"]}, {}),
    ("settimeofday stime clock_settime clock_settime64", "SCMP_ACT_ALLOW", [],
     {"caps": ["CAP_SYS_TIME"]}, {}),
    ("vhangup", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYS_TTY_CONFIG"]}, {}),
    ("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", "SCMP_ACT_ALLOW", [],
     {"caps": ["CAP_SYS_NICE"]}, {}),
    ("syslog", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_SYSLOG"]}, {}),
    ("bpf", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_BPF"]}, {}),
    ("perf_event_open", "SCMP_ACT_ALLOW", [], {"caps": ["CAP_PERFMON"]}, {}),
)

# Go's GOARCH names (used in profile filters) -> the OCI architectures docker lists for them.
ARCH_MAP: dict[str, list[str]] = {
    "amd64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "arm64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}
MACHINE_TO_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "riscv64": "riscv64",
                     "i686": "386", "armv7l": "arm", "ppc64le": "ppc64le"}


def default_profile() -> dict[str, Any]:
    """Docker's default profile in docker's own format (a fresh dict each call)."""
    syscalls: list[dict[str, Any]] = [{"names": _ALLOWED.split(), "action": "SCMP_ACT_ALLOW"}]
    for names, action, args, includes, excludes in _RULES:
        rule: dict[str, Any] = {"names": names.split(), "action": action, "args": list(args),
                                "includes": dict(includes), "excludes": dict(excludes)}
        if names == "clone3" and action == "SCMP_ACT_ERRNO":
            rule["errnoRet"] = _ENOSYS
        syscalls.append(rule)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": arches[0], "subArchitectures": arches[1:]}
                    for arches in ARCH_MAP.values()],
        "syscalls": syscalls,
    }


def _kernel_at_least(kernel: tuple[int, int] | None, minimum: str) -> bool:
    if kernel is None:
        return True
    major, _, minor = minimum.partition(".")
    return kernel >= (int(major), int(minor or 0))


def _applies(rule: dict[str, Any], arch: str, caps: set[str], kernel: tuple[int, int] | None) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if includes.get("caps") and not all(c in caps for c in includes["caps"]):
        return False
    if includes.get("minKernel") and not _kernel_at_least(kernel, includes["minKernel"]):
        return False
    if excludes.get("arches") and arch in excludes["arches"]:
        return False
    if excludes.get("caps") and any(c in caps for c in excludes["caps"]):
        return False
    return True


def _architectures(profile: dict[str, Any], arch: str) -> list[str]:
    if profile.get("architectures"):
        return list(profile["architectures"])
    native = ARCH_MAP.get(arch, [])
    for entry in profile.get("archMap") or []:
        if native and entry.get("architecture") == native[0]:
            return [entry["architecture"], *(entry.get("subArchitectures") or [])]
    return []


def to_oci(profile: dict[str, Any], capabilities: Iterable[str], arch: str = "amd64",
           kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object docker derives from ``profile`` for one container.

    ``capabilities``: the container's bounding set (``CAP_*``); ``arch``: Go's GOARCH of the host;
    ``kernel``: (major, minor) to evaluate ``minKernel`` (``None``: assume new enough).
    Raises :class:`InvalidParameter` for a profile without ``defaultAction``.
    """
    if "defaultAction" not in profile:
        raise InvalidParameter("decoding seccomp profile failed: missing defaultAction")
    caps = set(capabilities)
    oci: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    oci["architectures"] = _architectures(profile, arch)
    if profile.get("flags"):
        oci["flags"] = list(profile["flags"])
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, arch, caps, kernel):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        out: dict[str, Any] = {"names": names, "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [dict(a) for a in rule["args"]]
        syscalls.append(out)
    oci["syscalls"] = syscalls
    return oci
