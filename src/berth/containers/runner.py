"""Starting a container's process: snapshots, the OCI bundle and the shim.

Layout (DESIGN "Data root"): ``containers/<id>/`` holds ``config.json``, ``rootfs/`` (the overlay
mount point), ``hostname``, ``hosts``, ``resolv.conf`` and ``<id>-json.log``; the shim's state is
``<exec-root>/shims/<id>/``. The container snapshot sits on an *init* snapshot
``<id>-init`` holding the mount points docker's init layer creates (``/etc/hosts``, ``/proc``...),
so those never appear in ``diff`` or ``commit``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tarfile
from pathlib import Path
from typing import Any

from berth.containers.create import cpu_quota_period
from berth.containers.model import Container
from berth.errors import BerthError, InvalidParameter
from berth.runtime import spec as oci
from berth.runtime.shimproto import PID_FILE, ShimConfig
from berth.runtime.user import resolve_user
from berth.store.blobs import fsync_write

INIT_LAYER_DIRS = ("dev", "dev/pts", "dev/shm", "etc", "proc", "sys")
INIT_LAYER_FILES = (".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf")
TINI = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/bin/tini")


def init_layer_tar() -> bytes:
    """The tiny tar of docker's init layer (mount points only, mode 0755 dirs, empty files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in INIT_LAYER_DIRS:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name in INIT_LAYER_FILES:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if name != ".dockerenv" else 0o755
            tar.addfile(info, io.BytesIO(b""))
        link = tarfile.TarInfo("etc/mtab")
        link.type, link.linkname, link.mode = tarfile.SYMTYPE, "/proc/mounts", 0o777
        tar.addfile(link)
    return buf.getvalue()


class Runner:
    """File-system and process plumbing for containers of one daemon."""

    def __init__(self, data_root: Path, exec_root: Path, snapshotter: Any, forkserver: Any) -> None:
        self.data_root = data_root
        self.exec_root = exec_root
        self.snapshotter = snapshotter
        self.forkserver = forkserver
        from berth.runtime import cgroups, linux

        # What this daemon can hand to containers: without CAP_SYS_RESOURCE (as in some VMs) the
        # default RLIMIT_NOFILE is capped at our own hard limit; --privileged gets what we hold.
        self.nofile = linux.nofile_ceiling()
        self.held_capabilities = linux.held_capabilities()
        self.cgroupns_default = "private" if cgroups.is_v2_only() else "host"

    # ----- paths -------------------------------------------------------------------------
    def bundle(self, cid: str) -> Path:
        return self.data_root / "containers" / cid

    def rootfs(self, cid: str) -> Path:
        return self.bundle(cid) / "rootfs"

    def state_dir(self, process_id: str) -> Path:
        return self.exec_root / "shims" / process_id

    def log_path(self, container: Container) -> Path | None:
        if (container.host_config.get("LogConfig") or {}).get("Type") == "none":
            return None
        return self.bundle(container.id) / f"{container.id}-json.log"

    # ----- snapshots ---------------------------------------------------------------------
    def create_rootfs(self, cid: str, image_top: str | None) -> None:
        """Prepare ``<id>-init`` and the container's writable snapshot on the image's top layer."""
        parent = image_top.split(":", 1)[1] if image_top else None
        init_key = f"{cid}-init"
        self.snapshotter.unpack(init_key, parent, io.BytesIO(init_layer_tar()))
        self.snapshotter.prepare(cid, init_key)
        self.bundle(cid).mkdir(parents=True, exist_ok=True)
        self.rootfs(cid).mkdir(exist_ok=True)

    def remove_rootfs(self, cid: str) -> None:
        self.unmount_rootfs(cid)
        for key in (cid, f"{cid}-init"):
            if self.snapshotter.exists(key):
                self.snapshotter.remove(key)
        shutil.rmtree(self.bundle(cid), ignore_errors=True)
        shutil.rmtree(self.state_dir(cid), ignore_errors=True)

    def mount_rootfs(self, cid: str) -> Path:
        target = self.rootfs(cid)
        target.mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(target):
            self.snapshotter.mount(cid, target)
        return target

    def unmount_rootfs(self, cid: str) -> None:
        target = self.rootfs(cid)
        if os.path.ismount(target):
            self.snapshotter.unmount(target)

    def upper(self, cid: str) -> Path:
        return self.snapshotter.upper(cid)

    def lowers(self, cid: str) -> list[Path]:
        return self.snapshotter.lowers(cid)

    # ----- bundle ------------------------------------------------------------------------
    def write_etc_files(self, container: Container, hosts: str, resolv: str) -> None:
        bundle = self.bundle(container.id)
        hostname = container.config.get("Hostname") or container.short_id
        fsync_write(bundle / "hostname", (hostname + "\n").encode())
        fsync_write(bundle / "hosts", hosts.encode())
        fsync_write(bundle / "resolv.conf", resolv.encode())

    def rewrite_etc_files(self, container: Container, hosts: str, resolv: str) -> None:
        """Update a running container's /etc/hosts and resolv.conf: in place, since they are
        bind-mounted into it (a rename would leave the container on the old inode), as dockerd does
        when a running container joins or leaves a network."""
        bundle = self.bundle(container.id)
        for name, text in (("hosts", hosts), ("resolv.conf", resolv)):
            try:
                with open(bundle / name, "r+b") as f:
                    f.truncate(0)
                    f.write(text.encode())
                    f.flush()
                    os.fsync(f.fileno())
            except FileNotFoundError:
                fsync_write(bundle / name, text.encode())

    def spec_options(self, container: Container, extra_mounts: list[oci.Mount], network_ns: str,
                     joined: dict[str, str] | None = None) -> oci.SpecOptions:
        """The runtime settings of ``container`` (rootfs must be mounted: users come from it).

        ``network_ns``: ``private``, ``host`` or a namespace path; ``joined``: namespace paths of
        another container for ``--pid``/``--ipc container:X`` (keys ``pid``, ``ipc``)."""
        joined = joined or {}
        cfg, hc = container.config, container.host_config
        rootfs = self.rootfs(container.id)
        user = resolve_user(rootfs, cfg.get("User") or "", hc.get("GroupAdd") or [])
        hostname = cfg.get("Hostname") or container.short_id
        args = [container.path, *container.args]
        bundle = self.bundle(container.id)
        ro = bool(hc.get("ReadonlyRootfs"))
        etc_opts = ("rbind", "rprivate", "ro") if ro else ("rbind", "rprivate")
        mounts = [oci.Mount(f"/etc/{name}", str(bundle / name), "bind", etc_opts)
                  for name in ("resolv.conf", "hostname", "hosts")]
        if hc.get("Init"):
            tini = next((p for p in TINI if os.path.exists(p)), None)
            if tini is None:
                raise InvalidParameter("docker-init binary not found: install the tini package")
            mounts.append(oci.Mount("/sbin/docker-init", tini, "bind", ("bind", "ro")))
            args = ["/sbin/docker-init", "--", *args]
        mounts.extend(extra_mounts)
        security = [str(s) for s in hc.get("SecurityOpt") or []]
        quota, period = cpu_quota_period(hc)
        devices, device_rules = _devices(hc)
        return oci.SpecOptions(
            args=args,
            env=oci.default_env(cfg.get("Env") or [], bool(cfg.get("Tty")), hostname, user.home),
            cwd=cfg.get("WorkingDir") or "/",
            uid=user.uid, gid=user.gid, additional_gids=list(user.additional_gids),
            tty=bool(cfg.get("Tty")), hostname=hostname, container_id=container.id,
            readonly_rootfs=ro, mounts=mounts, shm_size=int(hc.get("ShmSize") or oci.DEFAULT_SHM_SIZE),
            cap_add=list(hc.get("CapAdd") or []), cap_drop=list(hc.get("CapDrop") or []),
            privileged=bool(hc.get("Privileged")),
            ulimits=[oci.Ulimit(u["Name"], int(u["Soft"]), int(u["Hard"])) for u in hc.get("Ulimits") or []],
            no_new_privileges=any(s in ("no-new-privileges", "no-new-privileges:true",
                                        "no-new-privileges=true") for s in security),
            oom_score_adj=int(hc.get("OomScoreAdj") or 0),
            network=network_ns,
            pid=joined.get("pid") or ("host" if hc.get("PidMode") == "host" else "private"),
            ipc=joined.get("ipc") or ("host" if hc.get("IpcMode") == "host" else "private"),
            uts="host" if hc.get("UTSMode") == "host" else "private",
            memory=int(hc.get("Memory") or 0), memory_swap=int(hc.get("MemorySwap") or 0),
            memory_reservation=int(hc.get("MemoryReservation") or 0),
            cpu_shares=int(hc.get("CpuShares") or 0), cpu_quota=quota, cpu_period=period,
            cpuset_cpus=hc.get("CpusetCpus") or "", cpuset_mems=hc.get("CpusetMems") or "",
            pids_limit=int(hc.get("PidsLimit") or 0),
            memory_swappiness=_swappiness(hc.get("MemorySwappiness")),
            oom_kill_disable=bool(hc.get("OomKillDisable")),
            cgroup_parent="/" + (hc.get("CgroupParent") or "/berth").strip("/"),
            sysctls=dict(hc.get("Sysctls") or {}),
            seccomp_profile=_seccomp_option(security),
            devices=devices, device_cgroup_rules=device_rules,
            masked_paths=hc.get("MaskedPaths"), readonly_paths=hc.get("ReadonlyPaths"),
            nofile=self.nofile, all_capabilities=self.held_capabilities,
            cgroupns=_cgroupns(hc.get("CgroupnsMode"), self.cgroupns_default),
        )

    def write_spec(self, container: Container, options: oci.SpecOptions) -> None:
        """Write ``config.json`` for the container's bundle (atomically)."""
        spec = oci.generate_spec(options)
        spec["root"]["path"] = str(self.rootfs(container.id))
        fsync_write(self.bundle(container.id) / "config.json", json.dumps(spec, indent=1).encode())

    # ----- shims -------------------------------------------------------------------------
    def shim_config(self, container: Container) -> ShimConfig:
        """A fresh shim state directory and config for starting ``container`` (not running: the
        caller holds its lock). Leftovers of an earlier start cut short by a daemon crash (its
        shim, its created process, the runtime's state) are removed first, or the runtime would
        refuse the id ("container with id exists")."""
        state_dir = self.state_dir(container.id)
        runtime_root = self.exec_root / "runtime" / container.runtime
        self._discard_leftovers(container, state_dir, runtime_root)
        if state_dir.exists():
            shutil.rmtree(state_dir)
        state_dir.mkdir(parents=True)
        return ShimConfig(
            id=container.id, mode="init", container_id=container.id, state_dir=state_dir,
            runtime=container.runtime, runtime_root=self.exec_root / "runtime" / container.runtime,
            bundle=self.bundle(container.id), log_path=self.log_path(container), terminal=container.tty,
            open_stdin=bool(container.config.get("OpenStdin")), stdin_once=bool(container.config.get("StdinOnce")),
        )

    @staticmethod
    def _discard_leftovers(container: Container, state_dir: Path, runtime_root: Path) -> None:
        try:
            pid = int((state_dir / PID_FILE).read_text())
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            pid, title = 0, b""
        if pid and title.startswith(b"berth-shim init " + container.id[:12].encode()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if (runtime_root / container.id).exists():
            from berth.runtime.shim import load_backend
            try:
                load_backend(container.runtime, runtime_root).delete(container.id)
            except (BerthError, OSError):
                pass  # the start that follows reports what is still in the way

    async def spawn_shim(self, cfg: ShimConfig) -> int:
        """Start a shim (it creates the container or exec process and waits for ``start``)."""
        return await self.forkserver.aspawn_shim(cfg)


def _seccomp_option(security: list[str]) -> Any:
    for opt in security:
        key, _, value = opt.replace(":", "=", 1).partition("=")
        if key == "seccomp":
            if value == "unconfined":
                return "unconfined"
            try:
                return json.loads(value)
            except ValueError:
                raise InvalidParameter(f"invalid --security-opt: {opt!r}: seccomp profile is not JSON") from None
    return None


def _swappiness(value: Any) -> int | None:
    """``MemorySwappiness``: null or -1 leave the kernel's value."""
    return None if value is None or int(value) < 0 else int(value)


def _cgroupns(mode: str | None, default: str) -> str:
    """Docker's ``CgroupnsMode``: ``host`` or ``private``; empty means the daemon's default
    (host on cgroup v1, private on v2, as dockerd 20.10)."""
    return mode if mode in ("host", "private") else default


def _devices(hc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OCI devices and cgroup rules: the host's devices under ``--privileged``, then ``--device``
    mappings and ``--device-cgroup-rule`` rules. Raises SystemError_/InvalidParameter (dockerd's
    messages) for a missing device or a malformed rule, before anything runs."""
    from berth.runtime.devices import devices_from_path, host_devices, parse_cgroup_rule

    devices = host_devices() if hc.get("Privileged") else []
    rules: list[dict[str, Any]] = []
    for mapping in hc.get("Devices") or []:
        host = mapping.get("PathOnHost") or ""
        found, allowed = devices_from_path(host, mapping.get("PathInContainer") or host,
                                           mapping.get("CgroupPermissions") or "rwm")
        devices += found
        rules += allowed
    rules += [parse_cgroup_rule(text) for text in hc.get("DeviceCgroupRules") or []]
    return devices, rules
