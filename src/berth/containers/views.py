"""Docker's JSON for containers: ``GET /containers/json`` entries (with filters) and
``GET /containers/{id}/json`` (Engine API v1.41 "ContainerSummary", "ContainerInspectResponse")."""

from __future__ import annotations

import copy
import fnmatch
import re
import time
from typing import Any

from berth.containers.health import status_suffix as health_suffix
from berth.containers.model import HEALTH_STATUSES, Container
from berth.errors import InvalidParameter
from berth.filters import check_keys, label_matches, labels_match, prune_labels_match
from berth.timeutil import human_duration, parse_rfc3339_ns, parse_timestamp_arg

LIST_FILTERS = {"id", "name", "label", "label!", "status", "exited", "ancestor", "before", "since", "volume",
                "network", "publish", "expose", "health", "isolation", "is-task"}

NETWORK_SETTINGS_DEFAULTS: dict[str, Any] = {
    "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
    "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
    "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
    "Networks": {},
}


def _seconds(stamp: str) -> float:
    try:
        return parse_rfc3339_ns(stamp) / 1e9
    except ValueError:
        return 0.0


def status_text(c: Container, now: float | None = None) -> str:
    """docker's ``State.String()``: ``Up 5 minutes``, ``Exited (0) 2 hours ago``, ``Created``..."""
    now = time.time() if now is None else now
    st = c.state
    if st.status == "paused":
        return f"Up {human_duration(now - _seconds(st.started_at))} (Paused)"
    if st.status == "restarting":
        return f"Restarting ({st.exit_code}) {human_duration(now - _seconds(st.finished_at))} ago"
    if st.running:
        up = f"Up {human_duration(now - _seconds(st.started_at))}"
        return f"{up} ({health_suffix(st.health)})" if st.health is not None else up
    if st.status == "removing":
        return "Removal In Progress"
    if st.status == "dead":
        return "Dead"
    if st.started_at.startswith("0001-"):
        return "Created"
    if st.finished_at.startswith("0001-"):
        return ""
    return f"Exited ({st.exit_code}) {human_duration(now - _seconds(st.finished_at))} ago"


def network_settings(c: Container) -> dict[str, Any]:
    out = copy.deepcopy(NETWORK_SETTINGS_DEFAULTS)
    out.update(copy.deepcopy(c.network_settings))
    if not out.get("Networks"):
        mode = c.host_config.get("NetworkMode") or "default"
        if mode in ("none", "host"):
            out["Networks"] = {mode: _empty_endpoint()}
    return out


def _empty_endpoint() -> dict[str, Any]:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def inspect(service: Any, c: Container, size: bool = False) -> dict[str, Any]:
    """``ContainerInspectResponse``."""
    runner = service.runner
    bundle = runner.bundle(c.id)
    try:
        lowers = ":".join(str(p) for p in runner.lowers(c.id))
        upper = str(runner.upper(c.id))
    except Exception:
        lowers, upper = "", ""
    state = c.state.to_json()
    state["Pid"] = c.state.pid if c.state.running else 0
    log_path = runner.log_path(c)
    out: dict[str, Any] = {
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args, "State": state,
        "Image": c.image_id, "ResolvConfPath": str(bundle / "resolv.conf"),
        "HostnamePath": str(bundle / "hostname"), "HostsPath": str(bundle / "hosts"),
        "LogPath": str(log_path) if log_path else "", "Name": "/" + c.name, "RestartCount": c.restart_count,
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": service.exec_ids(c) if hasattr(service, "exec_ids") else None,
        "HostConfig": c.host_config,
        "GraphDriver": {"Data": {"LowerDir": lowers, "MergedDir": str(runner.rootfs(c.id)), "UpperDir": upper,
                                 "WorkDir": str(upper).rsplit("/", 1)[0] + "/work" if upper else ""},
                        "Name": "overlay2"},
        "Mounts": [_mount_point(m) for m in c.mounts],
        "Config": c.config,
        "NetworkSettings": network_settings(c),
    }
    if size:
        out["SizeRw"] = service.size_rw(c)
        out["SizeRootFs"] = out["SizeRw"] + _image_size(service, c)
    return out


def _mount_point(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
    return {k: m[k] for k in keys if k in m}


def _image_size(service: Any, c: Container) -> int:
    image = service.images.store.by_id(c.image_id)
    return image.size if image else 0


def command_text(c: Container) -> str:
    return " ".join([c.path, *c.args]) if c.args else c.path


def summary(service: Any, c: Container, size: bool) -> dict[str, Any]:
    """``ContainerSummary`` for ``GET /containers/json``."""
    settings = network_settings(c)
    image_name = c.image
    image = service.images.store.by_id(c.image_id)
    if image is not None and image_name != c.image_id and service.images.store.lookup(image_name) is not image:
        image_name = c.image_id  # the tag moved: docker shows the image ID then
    out: dict[str, Any] = {
        "Id": c.id, "Names": ["/" + c.name], "Image": image_name, "ImageID": c.image_id,
        "Command": command_text(c), "Created": int(_seconds(c.created)), "Ports": _ports(settings),
        "Labels": c.config.get("Labels") or {}, "State": c.state.status, "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": settings.get("Networks") or {}},
        "Mounts": [_mount_point(m) for m in c.mounts],
    }
    if size:
        out["SizeRw"] = service.size_rw(c)
        out["SizeRootFs"] = out["SizeRw"] + _image_size(service, c)
    return out


def _ports(settings: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, bindings in (settings.get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
            continue
        for b in bindings:
            out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                        "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
    return out


def prune_match(c: Container, filters: dict[str, list[str]]) -> bool:
    """Whether ``POST /containers/prune`` removes stopped container ``c`` under ``filters``
    (``label``/``label!`` as :func:`berth.filters.prune_labels_match`, ``until`` a time)."""
    if not prune_labels_match(c.config.get("Labels") or {}, filters):
        return False
    for spec in filters.get("until", []):
        try:
            if parse_rfc3339_ns(c.created) > parse_timestamp_arg(spec):
                return False
        except ValueError:
            raise InvalidParameter(f"invalid filter 'until={spec}'") from None
    return True


def list_containers(service: Any, all_: bool, limit: int, size: bool,
                    filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Containers newest first, docker's filter semantics (values ORed within a key)."""
    check_keys(filters, LIST_FILTERS)
    containers = service.store.all()
    statuses = filters.get("status", [])
    for status in statuses:
        if status not in ("created", "restarting", "running", "removing", "paused", "exited", "dead"):
            raise InvalidParameter(f"Unrecognised filter value for status: {status}")
    for health in filters.get("health", []):
        if health not in (*HEALTH_STATUSES, "none"):
            raise InvalidParameter(f"Unrecognised filter value for health: {health}")
    before = _bound(service, filters.get("before"))
    since = _bound(service, filters.get("since"))
    if limit > 0 or before or since or filters.get("exited") or statuses:
        all_ = True
    out = []
    for c in containers:
        if not all_ and not c.state.running:
            continue
        if before is not None and c.created >= before.created:
            continue
        if since is not None and c.created <= since.created:
            continue
        if not _matches(service, c, filters):
            continue
        out.append(summary(service, c, size))
        if 0 < limit <= len(out):
            break
    return out


def _bound(service: Any, values: list[str] | None) -> Container | None:
    if not values:
        return None
    return service.store.get(values[-1])


def _matches(service: Any, c: Container, f: dict[str, list[str]]) -> bool:
    if f.get("id") and not any(c.id.startswith(v) for v in f["id"]):
        return False
    if f.get("name") and not any(re.search(v.lstrip("/"), c.name) for v in f["name"]):
        return False
    labels = c.config.get("Labels") or {}
    if not labels_match(labels, f.get("label", [])) or any(label_matches(labels, s) for s in f.get("label!", [])):
        return False
    if f.get("status") and c.state.status not in f["status"]:
        return False
    if f.get("exited"):
        if c.state.running or c.state.started_at.startswith("0001-"):
            return False
        if str(c.state.exit_code) not in f["exited"]:
            return False
    if f.get("ancestor") and not any(_descends(service, c, v) for v in f["ancestor"]):
        return False
    if f.get("volume") and not any(any(v in (m.get("Name"), m.get("Destination"), m.get("Source"))
                                       for m in c.mounts) for v in f["volume"]):
        return False
    if f.get("network"):
        nets = network_settings(c).get("Networks") or {}
        ids = {n.get("NetworkID", "") for n in nets.values()}
        if not any(v in nets or any(i.startswith(v) for i in ids if i) for v in f["network"]):
            return False
    if f.get("publish") or f.get("expose"):
        ports = network_settings(c).get("Ports") or {}
        exposed = set((c.config.get("ExposedPorts") or {}).keys()) | set(ports)
        for key, want in (("publish", None), ("expose", exposed)):
            for spec in f.get(key, []):
                spec = spec if "/" in spec else spec + "/tcp"
                if key == "publish":
                    published = {f"{b.get('HostPort')}/{k.split('/')[1]}" for k, bs in ports.items() for b in bs or []}
                    if spec not in published and not any(fnmatch.fnmatch(p, spec) for p in published):
                        return False
                elif spec not in (want or set()):
                    return False
    if f.get("health") and (c.state.health.status if c.state.health else "none") not in f["health"]:
        return False
    if f.get("is-task") and "true" in f["is-task"]:
        return False
    return True


def _descends(service: Any, c: Container, ref: str) -> bool:
    image = service.images.store.lookup(ref)
    if image is None:
        return False
    current = service.images.store.by_id(c.image_id)
    while current is not None:
        if current.id == image.id:
            return True
        current = service.images.store.by_id(current.parent) if current.parent else None
    return False
