"""Starting a container's process, and cleaning up after it: the mechanics under ``start``.

In order (as dockerd's ``containerStart``): mount the rootfs, set up volumes, choose the network
namespace (private, the host's, or another container's) and write /etc/hosts and resolv.conf,
write the OCI spec, spawn the shim, attach the network to the new namespace and the clients that
attached early, then let the process run. The service keeps the container's state and events;
this module only brings the process up, and undoes what it did when that fails.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from berth.containers.attach import AttachHub
from berth.containers.model import Container
from berth.containers.runner import Runner
from berth.errors import BerthError, Conflict
from berth.runtime import cgroups
from berth.runtime.shimclient import ShimClient

log = logging.getLogger("berth.containers")


class Starter:
    """Brings containers' processes up. ``networks`` and ``volumes`` implement
    :mod:`berth.containers.interfaces` (either may be None); ``lookup`` resolves a container
    reference (``--network``/``--pid``/``--ipc container:X``) and raises NotFound."""

    def __init__(self, runner: Runner, networks: Any, volumes: Any, attach_hub: AttachHub,
                 lookup: Callable[[str], Container]) -> None:
        self.runner, self.networks, self.volumes = runner, networks, volumes
        self.attach_hub, self.lookup = attach_hub, lookup

    def shim(self, c: Container) -> ShimClient:
        """The client of ``c``'s shim (whether or not it runs)."""
        return ShimClient(self.runner.state_dir(c.id))

    def uses_network_service(self, c: Container) -> bool:
        """Whether ``c``'s network comes from the network service (not host, none's peers or
        another container's namespace)."""
        mode = c.host_config.get("NetworkMode") or "default"
        return self.networks is not None and mode != "host" and not mode.startswith("container:")

    async def start(self, c: Container) -> ShimClient:
        """Run ``c``'s process; sets ``c.state.pid`` and returns its shim's client. On any error
        what was set up is undone (``c.state.pid`` back to 0) and the error raised: RuntimeFailure
        from the runtime, Conflict for a joined container that is not running, NotFound."""
        rootfs = self.runner.mount_rootfs(c.id)
        net_prepared = False
        shim: ShimClient | None = None
        try:
            mounts = await self.volumes.setup(c, rootfs) if self.volumes is not None else []
            netns = self._network_namespace(c)
            if self.uses_network_service(c):
                await self.networks.prepare(c)
                net_prepared = True
                hosts, resolv = self.networks.hosts_file(c), self.networks.resolv_conf(c)
            elif netns not in ("host", "private"):
                hosts, resolv = self._joined_etc(c, netns)
            else:
                hosts, resolv = fallback_etc(netns)
            self.runner.write_etc_files(c, hosts, resolv)
            options = self.runner.spec_options(c, mounts, netns, self._joined_namespaces(c))
            self.runner.write_spec(c, options)
            await self.runner.spawn_shim(self.runner.shim_config(c))
            shim = self.shim(c)
            state = await shim.state()
            c.state.pid = state.pid
            if net_prepared and netns == "private":
                await self.networks.attach(c, f"/proc/{state.pid}/ns/net")
            await self.attach_hub.connect_pending(c, shim)
            await shim.start()
        except BaseException:
            await self._abort(c, shim, net_prepared)
            raise
        return shim

    async def _abort(self, c: Container, shim: ShimClient | None, net_prepared: bool) -> None:
        self.attach_hub.fail_pending(c.id)
        if shim is not None:
            try:
                await shim.kill(signal.SIGKILL)
            except BerthError:
                pass
        if net_prepared:
            try:
                await self.networks.release(c)
            except Exception:
                log.exception("releasing the network of %s failed", c.id)
        await self.cleanup(c)
        c.state.pid = 0

    async def cleanup(self, c: Container) -> None:
        """After the process ended: tear volumes down, unmount the rootfs, remove the cgroup.
        Failures are logged, not raised (the exit must still be recorded)."""
        if self.volumes is not None:
            try:
                await self.volumes.teardown(c)
            except Exception:
                log.exception("volume teardown of %s failed", c.id)
        try:
            self.runner.unmount_rootfs(c.id)
        except OSError:
            log.exception("unmounting the rootfs of %s failed", c.id)
        try:
            await asyncio.to_thread(cgroups.remove, c.cgroup_path)
        except Exception:
            log.debug("cgroup of %s not removed", c.id, exc_info=True)

    def _network_namespace(self, c: Container) -> str:
        mode = c.host_config.get("NetworkMode") or "default"
        if mode == "host":
            return "host"
        if mode.startswith("container:"):
            other = self.lookup(mode.split(":", 1)[1])
            if not other.state.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            return f"/proc/{other.state.pid}/ns/net"
        return "private"

    def _joined_namespaces(self, c: Container) -> dict[str, str]:
        """``--pid container:X`` and ``--ipc container:X``: X's namespace paths. Raises NotFound, or
        Conflict when X is not running (dockerd's getPidContainer/getIpcContainer messages)."""
        joined: dict[str, str] = {}
        for key, kind, what in (("PidMode", "pid", "PID"), ("IpcMode", "ipc", "IPC")):
            mode = c.host_config.get(key) or ""
            if mode.startswith("container:"):
                other = self.lookup(mode.split(":", 1)[1])
                if not other.state.running:
                    raise Conflict(f"cannot join {what} of a non running container: {other.id}")
                joined[kind] = f"/proc/{other.state.pid}/ns/{kind}"
        return joined

    def _joined_etc(self, c: Container, netns: str) -> tuple[str, str]:
        """``--network container:X`` takes X's hostname, /etc/hosts and resolv.conf, as dockerd's
        initializeNetworking does (copies made at start)."""
        other = self.lookup(c.host_config["NetworkMode"].split(":", 1)[1])
        c.config["Hostname"] = other.config.get("Hostname") or other.short_id
        c.config["Domainname"] = other.config.get("Domainname") or ""
        bundle = self.runner.bundle(other.id)
        try:
            return (bundle / "hosts").read_text(), (bundle / "resolv.conf").read_text()
        except OSError:
            return fallback_etc(netns)


def fallback_etc(netns: str) -> tuple[str, str]:
    """/etc/hosts and resolv.conf without the network service (host, none, container:...): the
    host's files for ``host``, else docker's default hosts and the host's resolv.conf without
    loopback name servers (they would not answer inside the namespace)."""
    if netns == "host":
        try:
            hosts = open("/etc/hosts").read()
        except OSError:
            hosts = "127.0.0.1\tlocalhost\n"
        try:
            resolv = open("/etc/resolv.conf").read()
        except OSError:
            resolv = ""
        return hosts, resolv
    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
             "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    resolv = ""
    try:
        with open("/etc/resolv.conf") as f:
            resolv = "".join(line for line in f if not line.startswith("nameserver 127.")
                             and not line.startswith("nameserver ::1"))
    except OSError:
        pass
    return hosts, resolv
