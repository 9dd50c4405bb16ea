"""Compile an OCI ``linux.seccomp`` object to a classic BPF program and load it.

The program reads ``struct seccomp_data`` (``linux/seccomp.h``: ``nr`` at offset 0, ``arch`` at 4,
``args[i]`` at ``16 + 8*i``, little endian here) and returns a ``SECCOMP_RET_*`` value (seccomp(2),
"Filter return values"). Layout: dispatch on ``arch``; per architecture, one block per syscall
holding its rules in profile order (a rule's ``args`` are ANDed; the first rule whose
conditions hold gives the action, an unconditional rule the fallback), found by a binary search
over the syscall numbers; syscalls without rules get the default action.

Like runc, syscalls numbered above every syscall the profile names get ``ENOSYS`` rather than the
default action, so a libc probing a new syscall falls back to the old one; architectures the
profile does not list get ``ENOSYS`` too.
"""

from __future__ import annotations

import ctypes
import errno
import json
from dataclasses import dataclass
from typing import Any

from berth.runtime import linux
from berth.runtime.syscalls import X32_SYSCALL_BIT, syscall_table

Instruction = tuple[int, int, int, int]  # (code, jt, jf, k) = struct sock_filter

# BPF opcodes (linux/filter.h, linux/bpf_common.h)
LD_W_ABS = 0x20
ALU_AND_K = 0x54
JMP_JA = 0x05
JMP_JEQ_K = 0x15
JMP_JGT_K = 0x25
JMP_JGE_K = 0x35
RET_K = 0x06

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

AUDIT_ARCH = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X32": 0xC000003E, "SCMP_ARCH_X86": 0x40000003}

FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}

_OFF_NR, _OFF_ARCH = 0, 4


class SeccompError(ValueError):
    """The profile cannot be compiled (unknown action, operator, architecture)."""


def action_value(action: str, errno_ret: int | None = None) -> int:
    """The ``SECCOMP_RET_*`` value of an OCI action name; ERRNO and TRACE default to EPERM."""
    data = errno.EPERM if errno_ret is None else errno_ret
    values = {
        "SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
        "SCMP_ACT_ERRNO": RET_ERRNO | (data & 0xFFFF), "SCMP_ACT_TRACE": RET_TRACE | (data & 0xFFFF),
        "SCMP_ACT_LOG": RET_LOG, "SCMP_ACT_ALLOW": RET_ALLOW,
    }
    if action not in values:
        raise SeccompError(f"seccomp: unsupported action {action}")
    return values[action]


@dataclass
class _Jump:
    """A placeholder instruction whose jt/jf/ja targets are labels resolved at assembly."""

    code: int
    k: int
    jt: str | None = None
    jf: str | None = None


class _Assembler:
    def __init__(self) -> None:
        self.code: list[Instruction | _Jump | str] = []
        self._n = 0

    def label(self) -> str:
        self._n += 1
        return f"L{self._n}"

    def emit(self, code: int, k: int = 0) -> None:
        self.code.append((code, 0, 0, k))

    def jump(self, code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        self.code.append(_Jump(code, k, jt, jf))

    def ret(self, value: int) -> None:
        self.emit(RET_K, value)

    def place(self, label: str) -> None:
        self.code.append(label)

    def assemble(self) -> list[Instruction]:
        where: dict[str, int] = {}
        index = 0
        for item in self.code:
            if isinstance(item, str):
                where[item] = index
            else:
                index += 1
        out: list[Instruction] = []
        for item in self.code:
            if isinstance(item, str):
                continue
            if isinstance(item, tuple):
                out.append(item)
                continue
            pos = len(out) + 1
            if item.code == JMP_JA:
                out.append((JMP_JA, 0, 0, where[item.jt or ""] - pos))
                continue
            jt = where[item.jt] - pos if item.jt else 0
            jf = where[item.jf] - pos if item.jf else 0
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise SeccompError("seccomp: rule too long for a conditional jump")
            out.append((item.code, jt, jf, item.k))
        if len(out) > 4096:
            raise SeccompError(f"seccomp: program of {len(out)} instructions exceeds 4096")
        return out


def _condition(asm: _Assembler, arg: dict[str, Any], fail: str) -> None:
    """Emit code that falls through when ``arg`` holds and jumps to ``fail`` otherwise."""
    index, op = int(arg["index"]), arg["op"]
    if not 0 <= index < 6:
        raise SeccompError(f"seccomp: argument index {index} out of range")
    value, value_two = int(arg.get("value", 0)), int(arg.get("valueTwo", 0))
    lo, hi = 16 + 8 * index, 16 + 8 * index + 4
    v_lo, v_hi = value & 0xFFFFFFFF, value >> 32 & 0xFFFFFFFF
    ok = asm.label()
    if op == "SCMP_CMP_EQ":
        asm.emit(LD_W_ABS, hi)
        asm.jump(JMP_JEQ_K, v_hi, jf=fail)
        asm.emit(LD_W_ABS, lo)
        asm.jump(JMP_JEQ_K, v_lo, jf=fail)
    elif op == "SCMP_CMP_NE":
        asm.emit(LD_W_ABS, hi)
        asm.jump(JMP_JEQ_K, v_hi, jf=ok)
        asm.emit(LD_W_ABS, lo)
        asm.jump(JMP_JEQ_K, v_lo, jt=fail)
    elif op == "SCMP_CMP_MASKED_EQ":
        d_lo, d_hi = value_two & 0xFFFFFFFF, value_two >> 32 & 0xFFFFFFFF
        asm.emit(LD_W_ABS, hi)
        asm.emit(ALU_AND_K, v_hi)
        asm.jump(JMP_JEQ_K, d_hi, jf=fail)
        asm.emit(LD_W_ABS, lo)
        asm.emit(ALU_AND_K, v_lo)
        asm.jump(JMP_JEQ_K, d_lo, jf=fail)
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_LT", "SCMP_CMP_LE"):
        # 64-bit unsigned compare: the high words decide unless equal, then the low words.
        greater = op in ("SCMP_CMP_GT", "SCMP_CMP_GE")
        above, below = (ok, fail) if greater else (fail, ok)
        asm.emit(LD_W_ABS, hi)
        asm.jump(JMP_JGT_K, v_hi, jt=above)
        asm.jump(JMP_JEQ_K, v_hi, jf=below)
        asm.emit(LD_W_ABS, lo)
        low_op = JMP_JGE_K if op in ("SCMP_CMP_GE", "SCMP_CMP_LT") else JMP_JGT_K
        if greater:
            asm.jump(low_op, v_lo, jf=fail)
        else:
            asm.jump(low_op, v_lo, jt=fail)
    else:
        raise SeccompError(f"seccomp: unsupported operator {op}")
    asm.place(ok)


def _rules_by_number(seccomp: dict[str, Any], arch: str) -> dict[int, list[dict[str, Any]]]:
    table = syscall_table(arch)
    by_nr: dict[int, list[dict[str, Any]]] = {}
    for rule in seccomp.get("syscalls") or []:
        for name in rule.get("names") or []:
            if name in table:
                by_nr.setdefault(table[name], []).append(rule)
    return by_nr


_Behaviour = tuple[tuple[tuple[int, str], ...], int]  # (conditional (action, args) rules, fallback)


def _behaviour(rules: list[dict[str, Any]], default: int) -> _Behaviour:
    conditional: list[tuple[int, str]] = []
    unconditional = None
    for rule in rules:
        action = action_value(rule["action"], rule.get("errnoRet"))
        if rule.get("args"):
            conditional.append((action, json.dumps(rule["args"], sort_keys=True)))
        elif unconditional is None:
            unconditional = action
    return tuple(conditional), default if unconditional is None else unconditional


def _arch_block(asm: _Assembler, seccomp: dict[str, Any], arch: str, default: int) -> None:
    """Emit the filter for one ``arch``; expects ``nr`` in the accumulator, always returns.

    Syscall numbers are cut into intervals of equal behaviour (runs of allowed syscalls, gaps
    with the default action, ``ENOSYS`` past the highest number named) and found by a binary
    search, so a syscall costs a few dozen instructions however long the profile.
    """
    by_nr = _rules_by_number(seccomp, arch)
    base = X32_SYSCALL_BIT if arch == "SCMP_ARCH_X32" else 0
    last = max(by_nr, default=base - 1)
    intervals: list[tuple[int, _Behaviour]] = []
    for nr in range(base, last + 1):
        behaviour = _behaviour(by_nr.get(nr, []), default)
        if not intervals or intervals[-1][1] != behaviour:
            intervals.append((nr, behaviour))
    newer = default if default in (RET_ALLOW, RET_LOG) else RET_ERRNO | errno.ENOSYS
    if not intervals or intervals[-1][1] != ((), newer):
        intervals.append((last + 1, ((), newer)))
    _search(asm, intervals)


def _search(asm: _Assembler, intervals: list[tuple[int, _Behaviour]]) -> None:
    if len(intervals) == 1:
        conditional, fallback = intervals[0][1]
        for action, args in conditional:
            next_rule = asm.label()
            for arg in json.loads(args):
                _condition(asm, arg, next_rule)
            asm.ret(action)
            asm.place(next_rule)
        asm.ret(fallback)
        return
    middle = len(intervals) // 2
    upper, lower = asm.label(), asm.label()
    # Conditional jumps reach 255 instructions at most: branch through an unconditional one.
    asm.jump(JMP_JGE_K, intervals[middle][0], jf=lower)
    asm.jump(JMP_JA, 0, jt=upper)
    asm.place(lower)
    _search(asm, intervals[:middle])
    asm.place(upper)
    _search(asm, intervals[middle:])


def compile_filter(seccomp: dict[str, Any]) -> list[Instruction]:
    """Compile an OCI ``linux.seccomp`` object into ``struct sock_filter`` tuples.

    Supports the x86 family (``SCMP_ARCH_X86_64``, ``SCMP_ARCH_X86``, ``SCMP_ARCH_X32``; an empty
    list means x86_64), every ``SCMP_ACT_*`` but NOTIFY, and every ``SCMP_CMP_*`` operator.
    Raises :class:`SeccompError` for anything else.
    """
    default = action_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    arches = list(dict.fromkeys(seccomp.get("architectures") or ["SCMP_ARCH_X86_64"]))
    unknown = [a for a in arches if a not in AUDIT_ARCH]
    if unknown:
        raise SeccompError(f"seccomp: unsupported architecture {unknown[0]}")
    asm = _Assembler()
    blocks: list[tuple[int, str, str]] = []
    if {"SCMP_ARCH_X86_64", "SCMP_ARCH_X32"} & set(arches):
        blocks.append((AUDIT_ARCH["SCMP_ARCH_X86_64"], "SCMP_ARCH_X86_64", asm.label()))
    if "SCMP_ARCH_X86" in arches:
        blocks.append((AUDIT_ARCH["SCMP_ARCH_X86"], "SCMP_ARCH_X86", asm.label()))
    asm.emit(LD_W_ABS, _OFF_ARCH)
    for audit, _, label in blocks:
        skip = asm.label()
        asm.jump(JMP_JEQ_K, audit, jf=skip)
        asm.jump(JMP_JA, 0, jt=label)
        asm.place(skip)
    asm.ret(RET_ERRNO | errno.ENOSYS)
    for _, arch, label in blocks:
        asm.place(label)
        asm.emit(LD_W_ABS, _OFF_NR)
        if arch == "SCMP_ARCH_X86_64":
            _x86_64_abi_split(asm, seccomp, arches, default)
        else:
            _arch_block(asm, seccomp, arch, default)
    return asm.assemble()


def _x86_64_abi_split(asm: _Assembler, seccomp: dict[str, Any], arches: list[str], default: int) -> None:
    """x86_64 and x32 share an audit arch; the X32 bit in ``nr`` tells them apart."""
    native, x32 = asm.label(), asm.label()
    asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, jf=native)
    asm.jump(JMP_JA, 0, jt=x32)
    asm.place(native)
    for arch, label in (("SCMP_ARCH_X86_64", None), ("SCMP_ARCH_X32", x32)):
        if label:
            asm.place(label)
        if arch in arches:
            _arch_block(asm, seccomp, arch, default)
        else:
            asm.ret(RET_ERRNO | errno.ENOSYS)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def filter_flags(seccomp: dict[str, Any]) -> int:
    """The ``SECCOMP_FILTER_FLAG_*`` bits named in ``seccomp["flags"]``; :class:`SeccompError` if unknown."""
    flags = 0
    for flag in seccomp.get("flags") or []:
        if flag not in FILTER_FLAGS:
            raise SeccompError(f"seccomp: unsupported flag {flag}")
        flags |= FILTER_FLAGS[flag]
    return flags


def install(program: list[Instruction], flags: int = 0) -> None:
    """Install a compiled program on the calling thread (needs ``no_new_privs`` or
    ``CAP_SYS_ADMIN``); raises ``OSError``."""
    array = (_SockFilter * len(program))(*[_SockFilter(*ins) for ins in program])
    prog = _SockFprog(len(program), ctypes.cast(array, ctypes.POINTER(_SockFilter)))
    linux.seccomp_set_filter(ctypes.pointer(prog), flags)


def load(seccomp: dict[str, Any]) -> None:
    """Compile ``seccomp`` (OCI form) and install it on the calling thread."""
    install(compile_filter(seccomp), filter_flags(seccomp))
