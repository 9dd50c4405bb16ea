"""The seccomp compiler: programs run through a classic-BPF interpreter (the subset seccomp
allows: ld abs, and, jeq/jgt/jge/ja, ret) against struct seccomp_data built here."""

from __future__ import annotations

import struct

import pytest

from berth.runtime import caps, seccomp
from berth.runtime.seccomp_bpf import (
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    RET_LOG,
    RET_TRAP,
    SeccompError,
    action_value,
    compile_filter,
)
from berth.runtime.syscalls import X32_SYSCALL_BIT, syscall_table

X86_64, I386 = 0xC000003E, 0x40000003
EPERM, ENOSYS = RET_ERRNO | 1, RET_ERRNO | 38
NR = syscall_table("SCMP_ARCH_X86_64")
NR32 = syscall_table("SCMP_ARCH_X86")


def run(program: list[tuple[int, int, int, int]], nr: int, args: tuple[int, ...] = (),
        arch: int = X86_64) -> int:
    """Evaluate ``program`` for one syscall; returns the SECCOMP_RET_* value."""
    padded = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *padded)
    acc, pc = 0, 0
    for _ in range(len(program) + 1):
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            acc &= k
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x25, 0x35):
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k}[code]
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not return")


@pytest.fixture(scope="module")
def default_program() -> list[tuple[int, int, int, int]]:
    return compile_filter(seccomp.to_oci(seccomp.default_profile(), caps.DEFAULT_CAPABILITIES))


@pytest.mark.parametrize("name, args, expected", [
    ("read", (), RET_ALLOW),
    ("execve", (), RET_ALLOW),
    ("chroot", (), RET_ALLOW),  # CAP_SYS_CHROOT is a default capability
    ("arch_prctl", (), RET_ALLOW),
    ("mount", (), EPERM),
    ("unshare", (), EPERM),
    ("setns", (), EPERM),
    ("reboot", (), EPERM),
    ("kexec_load", (), EPERM),
    ("clone", (0x01200011,), RET_ALLOW),  # fork-like flags
    ("clone", (0x10000000,), EPERM),  # CLONE_NEWUSER
    ("clone", (0x20000000 | 0x11,), EPERM),  # CLONE_NEWPID
    ("clone3", (), ENOSYS),
    ("socket", (2,), RET_ALLOW),
    ("socket", (40,), EPERM),  # AF_VSOCK
    ("socket", (40 | 1 << 32,), RET_ALLOW),  # a 64-bit NE compares the high word too
    ("personality", (0,), RET_ALLOW),
    ("personality", (8,), RET_ALLOW),
    ("personality", (0xFFFFFFFF,), RET_ALLOW),
    ("personality", (1,), EPERM),
    ("ptrace", (), RET_ALLOW),  # minKernel 4.8 holds when the kernel is not given
])
def test_default_profile(default_program, name: str, args: tuple[int, ...], expected: int) -> None:
    assert run(default_program, NR[name], args) == expected


def test_every_listed_syscall_allowed_and_others_denied(default_program) -> None:
    oci = seccomp.to_oci(seccomp.default_profile(), caps.DEFAULT_CAPABILITIES)
    plain = {n for r in oci["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    conditional = {n for r in oci["syscalls"] if r.get("args") or r["action"] != "SCMP_ACT_ALLOW" for n in r["names"]}
    newest = max(NR[n] for r in oci["syscalls"] for n in r["names"] if n in NR)
    for name, nr in NR.items():
        if name in conditional:
            continue
        expected = RET_ALLOW if name in plain else EPERM if nr <= newest else ENOSYS
        assert run(default_program, nr) == expected, name


@pytest.mark.parametrize("nr, arch, expected", [
    (NR["read"] | X32_SYSCALL_BIT, X86_64, RET_ALLOW),
    (syscall_table("SCMP_ARCH_X32")["execve"], X86_64, RET_ALLOW),
    (syscall_table("SCMP_ARCH_X32")["mount"], X86_64, EPERM),
    (NR32["socketcall"], I386, RET_ALLOW),
    (NR32["mount"], I386, EPERM),
    (NR32["chown32"], I386, RET_ALLOW),
    (3, 0xC00000B7, ENOSYS),  # aarch64: not in the profile
    (460, X86_64, ENOSYS),  # newer than every syscall the profile names
    (-1, X86_64, ENOSYS),
])
def test_architectures(default_program, nr: int, arch: int, expected: int) -> None:
    assert run(default_program, nr, arch=arch) == expected


def test_capabilities_open_syscalls() -> None:
    program = compile_filter(seccomp.to_oci(seccomp.default_profile(), caps.tweak(["SYS_ADMIN"], [])))
    assert run(program, NR["mount"]) == RET_ALLOW
    assert run(program, NR["clone"], (0x10000000,)) == RET_ALLOW
    assert run(program, NR["clone3"]) == RET_ALLOW


def test_min_kernel() -> None:
    old = compile_filter(seccomp.to_oci(seccomp.default_profile(), caps.DEFAULT_CAPABILITIES, kernel=(4, 4)))
    assert run(old, NR["ptrace"]) == EPERM


def profile(op: str, value: int, value_two: int = 0, default: str = "SCMP_ACT_ERRNO") -> list:
    return compile_filter({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": op}]}]})


BIG = 0x1_0000_0005
COMPARISONS = [
    ("SCMP_CMP_EQ", BIG, 0, [(BIG, True), (5, False), (BIG + 1, False)]),
    ("SCMP_CMP_NE", BIG, 0, [(BIG, False), (5, True), (BIG + (1 << 32), True)]),
    ("SCMP_CMP_LT", BIG, 0, [(BIG - 1, True), (BIG, False), (5, True), (BIG + 1, False), (1 << 40, False)]),
    ("SCMP_CMP_LE", BIG, 0, [(BIG - 1, True), (BIG, True), (BIG + 1, False), (0, True)]),
    ("SCMP_CMP_GT", BIG, 0, [(BIG - 1, False), (BIG, False), (BIG + 1, True), (1 << 40, True), (6, False)]),
    ("SCMP_CMP_GE", BIG, 0, [(BIG - 1, False), (BIG, True), (1 << 40, True), (0xFFFFFFFF, False)]),
    ("SCMP_CMP_MASKED_EQ", 0xF0F0_0000_00FF, 0x1010_0000_0001,
     [(0x1010_0000_0001, True), (0x1F1F_0000_FF01, True), (0x1010_0000_0002, False), (0x2010_0000_0001, False)]),
]


@pytest.mark.parametrize("op, value, value_two, cases", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_argument_comparisons(op: str, value: int, value_two: int, cases: list[tuple[int, bool]]) -> None:
    program = profile(op, value, value_two)
    assert run(program, NR["getpid"]) == RET_ALLOW
    for argument, allowed in cases:
        assert run(program, NR["write"], (1, 0, argument)) == (RET_ALLOW if allowed else EPERM), hex(argument)


def test_rules_in_order_and_unconditional_fallback() -> None:
    program = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_LOG"},
        {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["not_a_syscall"], "action": "SCMP_ACT_TRAP"}]})
    assert run(program, NR["kill"], (1, 9)) == RET_ERRNO | 13
    assert run(program, NR["kill"], (1, 15)) == RET_LOG
    assert run(program, NR["mkdir"]) == RET_KILL_PROCESS
    assert run(program, NR["rmdir"]) == RET_KILL_PROCESS
    assert run(program, NR["read"]) == RET_ALLOW
    assert run(program, 460) == RET_ALLOW  # an allow-by-default profile allows newer syscalls too


@pytest.mark.parametrize("action, errno_ret, value", [
    ("SCMP_ACT_ALLOW", None, RET_ALLOW), ("SCMP_ACT_ERRNO", None, EPERM), ("SCMP_ACT_ERRNO", 38, ENOSYS),
    ("SCMP_ACT_TRAP", None, RET_TRAP), ("SCMP_ACT_KILL", None, 0), ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
])
def test_action_values(action: str, errno_ret: int | None, value: int) -> None:
    assert action_value(action, errno_ret) == value


@pytest.mark.parametrize("bad", [
    {"defaultAction": "SCMP_ACT_NOTIFY"},
    {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]},
    {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
])
def test_unsupported(bad: dict) -> None:
    with pytest.raises(SeccompError):
        compile_filter(bad)


def test_program_is_compact(default_program) -> None:
    assert len(default_program) < 1200
    everything = compile_filter(seccomp.to_oci(seccomp.default_profile(), caps.CAPABILITIES))
    assert len(everything) < 1200
