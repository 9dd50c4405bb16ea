"""The JSON type checks Go's ``encoding/json`` makes when dockerd decodes a request body, for the
bodies whose fields berth reads as typed values (``POST /containers/create``).

dockerd answers a field of the wrong JSON type with ``json: cannot unmarshal <kind> into Go
struct field <Struct>.<path> of type <type>`` and status 500 (checked against dockerd 20.10);
berth gives the same instead of failing somewhere inside with a Python error. Only the kinds are
checked (string, number, bool, array, object; ``null`` fits everything), at the top level of the
Config and of its HostConfig. Sans-I/O.
"""

from __future__ import annotations

from typing import Any

from berth.errors import SystemError_

_STR, _BOOL, _STRS, _OBJ = "string", "bool", "[]string", "object"
_STRSLICE = "strslice"  # a string or an array of strings (docker's strslice.StrSlice)

#: container.Config fields -> Go type (as dockerd names it in the message).
CONFIG_FIELDS: dict[str, str] = {
    **dict.fromkeys(("Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal"), _STR),
    **dict.fromkeys(("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
                     "ArgsEscaped", "NetworkDisabled"), _BOOL),
    **dict.fromkeys(("Cmd", "Entrypoint", "Shell"), _STRSLICE),
    "Env": _STRS, "OnBuild": _STRS, "StopTimeout": "int",
    "ExposedPorts": "nat.PortSet", "Volumes": "map[string]struct {}", "Labels": "map[string]string",
    "Healthcheck": "container.HealthConfig", "HostConfig": "container.HostConfig",
    "NetworkingConfig": "network.NetworkingConfig",
}

#: container.HostConfig fields (with its embedded Resources) -> Go type.
HOST_CONFIG_FIELDS: dict[str, str] = {
    **dict.fromkeys(("ContainerIDFile", "NetworkMode", "VolumeDriver", "CgroupnsMode", "IpcMode", "Cgroup",
                     "PidMode", "UTSMode", "UsernsMode", "Runtime", "Isolation", "CgroupParent", "CpusetCpus",
                     "CpusetMems"), _STR),
    **dict.fromkeys(("AutoRemove", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "OomKillDisable",
                     "Init"), _BOOL),
    **dict.fromkeys(("Binds", "VolumesFrom", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd",
                     "Links", "SecurityOpt", "DeviceCgroupRules", "MaskedPaths", "ReadonlyPaths"), _STRS),
    **dict.fromkeys(("CapAdd", "CapDrop"), _STRSLICE),
    **dict.fromkeys(("ShmSize", "CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
                     "CpuRealtimeRuntime", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap",
                     "MemorySwappiness", "PidsLimit", "CpuCount", "CpuPercent"), "int64"),
    **dict.fromkeys(("IOMaximumIOps", "IOMaximumBandwidth"), "uint64"),
    "OomScoreAdj": "int", "BlkioWeight": "uint16",
    **dict.fromkeys(("StorageOpt", "Tmpfs", "Sysctls"), "map[string]string"),
    "LogConfig": "container.LogConfig", "RestartPolicy": "container.RestartPolicy", "PortBindings": "nat.PortMap",
    "Devices": "[]container.DeviceMapping", "Mounts": "[]mount.Mount", "Ulimits": "[]*units.Ulimit",
}

_INTEGERS = {"int": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
             "uint16": (0, 2**16 - 1)}


def check_create_body(body: Any) -> None:
    """Raise dockerd's error for a ``POST /containers/create`` body with a field of the wrong
    JSON kind (``body`` as ``json.loads`` returned it).

    Raises:
        SystemError_: ``json: cannot unmarshal ...`` (dockerd answers these with 500).
    """
    if not isinstance(body, dict):
        raise SystemError_(f"json: cannot unmarshal {_kind(body)} into Go value of type "
                           "runconfig.ContainerConfigWrapper")
    _check_fields(body, CONFIG_FIELDS, "ContainerConfigWrapper.")
    host = body.get("HostConfig")
    if isinstance(host, dict):
        _check_fields(host, HOST_CONFIG_FIELDS, "HostConfig.HostConfig.")


def _check_fields(obj: dict[str, Any], fields: dict[str, str], prefix: str) -> None:
    for name, value in obj.items():
        go_type = fields.get(name)
        if go_type is None or value is None:
            continue
        mismatch = _mismatch(value, go_type)
        if mismatch:
            kind, shown = mismatch
            raise SystemError_(f"json: cannot unmarshal {kind} into Go struct field {prefix}{name} of type {shown}")


def _mismatch(value: Any, go_type: str) -> tuple[str, str] | None:
    """(the JSON kind Go reports, the Go type it names) when ``value`` does not fit ``go_type``."""
    if go_type == _STRS and isinstance(value, list):  # an element of the wrong kind
        bad = next((v for v in value if v is not None and not isinstance(v, str)), None)
        return (_kind(bad), "string") if bad is not None else None
    found = _kind_mismatch(value, go_type)
    return (found, "string" if go_type == _STRSLICE else go_type) if found else None


def _kind_mismatch(value: Any, go_type: str) -> str:
    kind = _kind(value)
    if go_type == _STR:
        return "" if kind == "string" else kind
    if go_type == _BOOL:
        return "" if kind == "bool" else kind
    if go_type == _STRSLICE:
        if kind == "string" or (kind == "array" and all(isinstance(v, str) for v in value)):
            return ""
        return kind
    if go_type in _INTEGERS:
        if kind != "number":
            return kind
        low, high = _INTEGERS[go_type]
        if isinstance(value, float) and not value.is_integer() or not low <= value <= high:
            return f"number {value}"
        return ""
    if go_type.startswith("[]"):
        return "" if kind == "array" else kind
    return "" if kind == "object" else kind  # structs and maps


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
