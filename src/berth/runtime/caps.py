"""Linux capabilities: names, numbers and docker's ``--cap-add``/``--cap-drop`` rules.

Names and numbers are the kernel's (``include/uapi/linux/capability.h``, capabilities(7)).
The default set and the add/drop semantics are docker's ("Runtime privilege and Linux
capabilities" in the ``docker run`` reference): 14 capabilities by default, ``ALL`` in
``--cap-add`` grants every capability except the dropped ones, ``ALL`` in ``--cap-drop`` keeps only
the added ones, names are case-insensitive with or without the ``CAP_`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

from berth.errors import InvalidParameter

# Index = capability number.
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(CAPABILITIES)}

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

ALL = "ALL"


def normalize(name: str) -> str:
    """Return the canonical ``CAP_*`` spelling of ``name`` (or ``"ALL"``).

    ``"net_admin"``, ``"NET_ADMIN"`` and ``"cap_net_admin"`` all give ``"CAP_NET_ADMIN"``.
    Raises :class:`InvalidParameter` ``unknown capability: "CAP_FOO"`` (docker's wording).
    """
    upper = name.strip().upper()
    if upper == ALL:
        return ALL
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAP_NUMBERS:
        raise InvalidParameter(f'unknown capability: "{upper}"')
    return upper


def tweak(adds: Iterable[str], drops: Iterable[str], privileged: bool = False,
          base: Iterable[str] = DEFAULT_CAPABILITIES, every: Iterable[str] = CAPABILITIES) -> list[str]:
    """The capability list of a container, as docker computes it for ``docker run``.

    ``privileged`` gives ``every`` capability (all the kernel knows, unless the caller holds
    fewer). Otherwise ``ALL`` in ``adds`` gives ``every`` capability not in ``drops``; ``ALL`` in
    ``drops`` gives exactly ``adds``; else ``base`` minus ``drops`` plus ``adds`` (order kept, no
    duplicates). Raises :class:`InvalidParameter` for unknown names.
    """
    add = [normalize(c) for c in adds]
    drop = [normalize(c) for c in drops]
    if privileged:
        return list(every)
    if ALL in add:
        caps = [c for c in every if c not in drop]
    elif ALL in drop:
        caps = [c for c in add if c != ALL]
    else:
        caps = [c for c in base if c not in drop] + add
    return list(dict.fromkeys(caps))


def to_mask(names: Iterable[str]) -> int:
    """Bit mask (bit N = capability number N) of ``names``; unknown names raise ``KeyError``."""
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


def from_mask(mask: int) -> list[str]:
    """Names of the capabilities set in ``mask``, in number order (unknown bits ignored)."""
    return [name for number, name in enumerate(CAPABILITIES) if mask >> number & 1]
