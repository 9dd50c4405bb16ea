"""Turn a ``POST /containers/create`` body into a container record (sans-I/O except the clock).

Merging with the image follows docker's rules (``daemon/commit.go`` ``merge`` as documented by
"docker run": user settings win; Env merged by key; image Cmd used only when the user gave neither
Cmd nor Entrypoint; an explicit empty Entrypoint clears the image's). Validation messages are
dockerd 20.10's (``verifyContainerSettings``).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from berth.containers.model import Container, new_container_id
from berth.errors import Conflict, InvalidParameter
from berth.images.model import container_config
from berth.runtime import caps
from berth.runtime.spec import MASKED_PATHS, READONLY_PATHS
from berth.timeutil import rfc3339_nano

MIN_MEMORY = 6 * 1024 * 1024
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")

#: HostConfig as ``docker inspect`` shows it: every field, docker's zero values.
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
    "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
    "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "berth", "ConsoleSize": [0, 0],
    "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
    "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False,
    "PidsLimit": None, "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "Mounts": None, "Tmpfs": None, "Init": None, "MaskedPaths": None,
    "ReadonlyPaths": None,
}

CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
               "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
               "StopTimeout", "Shell")


def normalize_host_config(host_config: dict[str, Any] | None) -> dict[str, Any]:
    """Fill every HostConfig field docker shows; keep the client's values."""
    out = copy.deepcopy(HOST_CONFIG_DEFAULTS)
    for key, value in (host_config or {}).items():
        out[key] = value
    if not out.get("NetworkMode"):
        out["NetworkMode"] = "default"
    if not out.get("RestartPolicy") or not isinstance(out["RestartPolicy"], dict):
        out["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    if not out["RestartPolicy"].get("Name"):
        out["RestartPolicy"]["Name"] = "no"
    if not out.get("LogConfig") or not out["LogConfig"].get("Type"):
        out["LogConfig"] = {"Type": "json-file", "Config": (out.get("LogConfig") or {}).get("Config") or {}}
    if not out.get("ShmSize"):
        out["ShmSize"] = 67108864
    if out.get("PortBindings") is None:
        out["PortBindings"] = {}
    return out


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Docker's merge of the user's Config with the image's (see module docstring)."""
    conf = copy.deepcopy(user)
    if not conf.get("User"):
        conf["User"] = image.get("User", "")
    exposed = dict(image.get("ExposedPorts") or {})
    exposed.update(conf.get("ExposedPorts") or {})
    conf["ExposedPorts"] = exposed or None
    env = list(conf.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    env += [e for e in image.get("Env") or [] if e.split("=", 1)[0] not in keys]
    conf["Env"] = env or None
    labels = dict(image.get("Labels") or {})
    labels.update(conf.get("Labels") or {})
    conf["Labels"] = labels
    if not conf.get("Entrypoint"):
        if not conf.get("Cmd"):
            conf["Cmd"] = image.get("Cmd")
            if image.get("ArgsEscaped"):
                conf["ArgsEscaped"] = True
        if conf.get("Entrypoint") is None:
            conf["Entrypoint"] = image.get("Entrypoint")
    if image.get("Healthcheck") and not conf.get("Healthcheck"):
        conf["Healthcheck"] = image["Healthcheck"]
    if not conf.get("WorkingDir"):
        conf["WorkingDir"] = image.get("WorkingDir", "")
    volumes = dict(image.get("Volumes") or {})
    volumes.update(conf.get("Volumes") or {})
    conf["Volumes"] = volumes or None
    if not conf.get("StopSignal") and image.get("StopSignal"):
        conf["StopSignal"] = image["StopSignal"]
    if image.get("Shell") and not conf.get("Shell"):
        conf["Shell"] = image["Shell"]
    return conf


def entrypoint_and_args(config: dict[str, Any]) -> tuple[str, list[str]]:
    """``Path`` and ``Args`` of the container process. Raises InvalidParameter when there is none."""
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = list(config.get("Cmd") or [])
    argv = entrypoint + cmd if entrypoint else cmd
    if not argv:
        raise InvalidParameter("No command specified")
    return argv[0], argv[1:]


def validate_host_config(hc: dict[str, Any], ncpu: int | None = None, update: bool = False) -> None:
    """dockerd's checks of resources and restart policy. Raises InvalidParameter.

    ``update``: ``hc`` holds only the resources of an update request (a memory+swap limit
    alone is then allowed, as dockerd's ``verifyPlatformContainerResources(..., update)``).
    """
    memory = int(hc.get("Memory") or 0)
    swap = int(hc.get("MemorySwap") or 0)
    if memory and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if swap > 0 and not memory and not update:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    if memory and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    reservation = int(hc.get("MemoryReservation") or 0)
    if memory and reservation and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")
    nano = int(hc.get("NanoCpus") or 0)
    if nano and hc.get("CpuPeriod"):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and hc.get("CpuQuota"):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = ncpu or os.cpu_count() or 1
    if nano < 0 or nano > ncpu * 1_000_000_000:
        raise InvalidParameter(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if int(hc.get("CpuShares") or 0) < 0:
        raise InvalidParameter("invalid CPU shares")
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name", "")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    if retries < 0:
        raise InvalidParameter("maximum retry count cannot be negative")
    if retries and name != "on-failure":
        raise InvalidParameter(f"maximum retry count cannot be used with restart policy '{name}'")
    if hc.get("AutoRemove") and name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    for key in ("CapAdd", "CapDrop"):
        for name in hc.get(key) or []:
            try:
                caps.normalize(name)
            except InvalidParameter as exc:  # refused at create, so no container is left behind
                raise InvalidParameter(f"invalid {key}: {exc.message}") from exc
    runtime = hc.get("Runtime") or "berth"
    if runtime not in ("berth", "runc"):
        raise InvalidParameter(f"Unknown runtime specified {runtime}")
    log_type = (hc.get("LogConfig") or {}).get("Type", "json-file")
    if log_type not in ("json-file", "none", "local"):
        raise InvalidParameter(f'logger: no log driver named \'{log_type}\' is registered')


#: HostConfig resources ``POST /containers/{id}/update`` may change; 0 or absent leaves them as they are.
UPDATABLE = ("CpuShares", "Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuPeriod", "CpuQuota",
             "CpusetCpus", "CpusetMems", "BlkioWeight", "KernelMemory")


def merge_update(hc: dict[str, Any], body: dict[str, Any], cid: str) -> dict[str, Any]:
    """The HostConfig ``hc`` after ``docker update`` with ``body`` (an UpdateConfig), validated.

    dockerd 20.10's rules (``container.UpdateContainer``): clients send 0 for unset resources,
    so 0 changes nothing; ``PidsLimit`` changes when present (0 or less: unlimited); the
    request's own values are validated (not the merge: a reservation above the old limit
    passes); a new memory limit above the recorded memory+swap limit needs ``MemorySwap`` in
    the same update. Raises Conflict ("Cannot update container ID: ...") or InvalidParameter (validation).
    """
    policy = body.get("RestartPolicy") or {}
    validate_host_config({**{key: body.get(key) for key in UPDATABLE}, "RestartPolicy": policy}, update=True)
    merged = dict(hc)
    memory, swap = int(body.get("Memory") or 0), int(body.get("MemorySwap") or 0)
    if memory and not swap and memory > int(hc.get("MemorySwap") or 0):
        raise Conflict(f"Cannot update container {cid}: Memory limit should be smaller than already set "
                       "memoryswap limit, update the memoryswap at the same time")
    for key in UPDATABLE:
        if body.get(key):
            merged[key] = body[key]
    if body.get("PidsLimit") is not None:
        merged["PidsLimit"] = body["PidsLimit"]
    if policy.get("Name"):
        if policy["Name"] not in ("", "no") and hc.get("AutoRemove"):
            raise InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for the container")
        merged["RestartPolicy"] = policy
    return merged


def cpu_quota_period(hc: dict[str, Any]) -> tuple[int, int]:
    """The CFS (quota, period) in microseconds of HostConfig ``hc``: ``CpuQuota``/``CpuPeriod`` as
    given, else derived from ``NanoCpus`` over docker's 100 ms period (0 for none)."""
    nano = int(hc.get("NanoCpus") or 0)
    period = int(hc.get("CpuPeriod") or 0) or (100000 if nano else 0)
    quota = int(hc.get("CpuQuota") or 0) or (nano * period // 1_000_000_000 if nano else 0)
    return quota, period


def update_resources(hc: dict[str, Any]) -> dict[str, Any]:
    """OCI ``linux.resources`` (memory, cpu, pids) of HostConfig ``hc`` for a live update of a
    running container's cgroup (only what ``docker update`` can change)."""
    quota, period = cpu_quota_period(hc)
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = int(hc["Memory"])
    if hc.get("MemorySwap"):
        memory["swap"] = int(hc["MemorySwap"])
    if hc.get("MemoryReservation"):
        memory["reservation"] = int(hc["MemoryReservation"])
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if quota:
        cpu["quota"], cpu["period"] = quota, period
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    out: dict[str, Any] = {"memory": memory, "cpu": cpu}
    if hc.get("PidsLimit") is not None:
        out["pids"] = {"limit": int(hc["PidsLimit"]) if int(hc["PidsLimit"]) > 0 else -1}
    return out


def validate_config(config: dict[str, Any]) -> None:
    workdir = config.get("WorkingDir") or ""
    if workdir and not workdir.startswith("/"):
        raise InvalidParameter(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    for entry in config.get("Env") or []:
        if not entry or entry.startswith("="):
            raise InvalidParameter(f"invalid environment variable: {entry}")


def build_container(body: dict[str, Any], name: str, image_ref: str, image_id: str,
                    image_config: dict[str, Any], default_runtime: str = "berth") -> Container:
    """A new (not yet stored) container from a create request body and its resolved image.

    Raises InvalidParameter for invalid settings (nothing is created then).
    """
    user = {k: body[k] for k in CONFIG_KEYS if k in body}
    user["Image"] = image_ref
    validate_config(user)
    host_config = normalize_host_config(body.get("HostConfig"))
    if not (body.get("HostConfig") or {}).get("Runtime"):
        host_config["Runtime"] = default_runtime
    validate_host_config(host_config)
    if not host_config.get("Privileged"):
        # dockerd records the default masked and read-only paths at create (inspect shows them);
        # `--security-opt systempaths=unconfined` sends empty lists instead
        for key, default in (("MaskedPaths", MASKED_PATHS), ("ReadonlyPaths", READONLY_PATHS)):
            if host_config.get(key) is None:
                host_config[key] = list(default)
    if host_config.get("Memory") and not host_config.get("MemorySwap"):
        # dockerd's adaptContainerSettings: memory+swap defaults to twice the memory limit
        host_config["MemorySwap"] = 2 * int(host_config["Memory"])
    merged = merge_image_config(user, image_config)
    if merged.get("Entrypoint") == [""]:
        merged["Entrypoint"] = None  # dockerd's mergeAndVerifyConfig: `--entrypoint ""` means none at all
    path, args = entrypoint_and_args(merged)
    cid = new_container_id()
    if not merged.get("Hostname"):
        # dockerd's newContainer: a host-network container takes the host's name, others the short ID
        merged["Hostname"] = os.uname().nodename if host_config.get("NetworkMode") == "host" else cid[:12]
    config = container_config(merged)
    config["Labels"] = merged.get("Labels") or {}
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        config[key] = bool(merged.get(key))
    return Container(
        id=cid, name=name, created=rfc3339_nano(), image=image_ref, image_id=image_id, config=config,
        host_config=host_config, networking_config=body.get("NetworkingConfig") or {},
        path=path, args=args, runtime=host_config["Runtime"],
    )
