"""The structured flag values of ``run``/``create``: ``-p``/``--expose`` (go-connections ``nat``),
``--mount`` (docker's CSV syntax), ``--device``, ``--security-opt`` and ``--network`` (long syntax),
turned into the Engine API fields docker's CLI sends. Errors are :class:`~berth.cli.runvalues.OptionError`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from berth.cli.runvalues import OptionError, bad_flag, ram_in_bytes, split_kv
from berth.goquote import quote as go_quote


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


def volume_source(spec: str) -> str:
    """The source of one ``-v`` spec (``SOURCE:TARGET[:MODE]`` or ``TARGET``): ``""`` for an
    anonymous volume such as ``/data``, else the host path or volume name that makes it a bind.

    The spec is split as docker's CLI does (its compose loader's ``ParseVolume``, used by
    ``docker run``/``create`` since docker 23): a spec of one or two characters is a target alone,
    a letter followed by ``:`` is a Windows drive and stays in its section. Raises
    :class:`OptionError` with docker's wording for an empty spec, an empty section between colons
    (``:/x``, ``/a::/x``, ``/a:/x:``) and more than three sections.
    """
    if not spec:
        raise OptionError("invalid empty volume spec")
    if len(spec) <= 2:
        return ""
    sections: list[str] = []
    buffer = ""
    for char in [*spec, None]:  # None ends the last section
        if char == ":" and len(buffer) == 1 and buffer.isalpha():
            buffer += char
        elif char not in (":", None):
            buffer += char
        elif not buffer:
            raise OptionError(f"invalid spec: {spec}: empty section between colons")
        elif char == ":" and len(sections) == 2:
            raise OptionError(f"invalid spec: {spec}: too many colons")
        else:
            sections.append(buffer)
            buffer = ""
    return sections[0] if len(sections) > 1 else ""


def absolute_bind(spec: str) -> str:
    """A ``-v`` bind spec whose host path is ``.`` or starts with ``./`` made absolute against
    the current directory, as docker's CLI does before sending ``HostConfig.Binds`` (docker run
    reference, "Mount volume (-v, --read-only)"); other specs are returned unchanged."""
    source, sep, rest = spec.partition(":")
    if sep and (source == "." or source.startswith("./")):
        return f"{os.path.abspath(source)}:{rest}"
    return spec


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
