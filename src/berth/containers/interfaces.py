"""What the container service needs from the network and volume services.

The container lifecycle calls these at fixed points (create, start, stop, remove, daemon restart);
the network and volume packages implement them. Keeping the contract here lets each side be
built and tested alone (STYLE: services over stores, small interfaces).

On ``create``: ``volumes.validate`` -> rootfs snapshot -> ``volumes.populate`` (rootfs mounted;
only when ``volumes.wants_image_content``). Call order on ``start``: ``volumes.setup`` (rootfs
mounted) -> ``networks.prepare`` -> hosts and resolv.conf written from
``networks.hosts_file``/``networks.resolv_conf`` -> runtime create ->
``networks.attach(container, "/proc/<pid>/ns/net")`` -> runtime start. On exit:
``networks.release`` then ``volumes.teardown``. On remove: ``networks.forget`` and
``volumes.remove_container`` (anonymous volumes deleted when asked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from berth.containers.model import Container
from berth.runtime.spec import Mount


class NetworkAttacher(Protocol):
    """The network service as the container lifecycle sees it."""

    async def validate(self, container: Container) -> list[str]:
        """At create: check ``HostConfig.NetworkMode`` and ``NetworkingConfig`` (networks exist,
        ``--ip`` inside the subnet, aliases only on user networks...). Raises NotFound or
        InvalidParameter with docker's messages. Fills ``container.network_settings`` with the
        configured (not yet connected) endpoints, as ``docker create`` then ``inspect`` shows.
        Returns the create response's ``Warnings`` (e.g. ports published in host mode)."""

    async def prepare(self, container: Container) -> None:
        """At start, before the runtime: allocate addresses, MACs and host ports for every
        endpoint and fill ``container.network_settings`` (IPAddress, Gateway, MacAddress,
        Networks{...}, Ports). Raises (e.g. a host port in use) leaving nothing allocated."""

    def hosts_file(self, container: Container) -> str:
        """Content of the container's /etc/hosts (after :meth:`prepare`)."""

    def resolv_conf(self, container: Container) -> str:
        """Content of the container's /etc/resolv.conf (after :meth:`prepare`)."""

    async def attach(self, container: Container, netns_path: str) -> None:
        """Plug the prepared endpoints into the namespace at ``netns_path`` (veths, addresses,
        routes), start port proxies and register names with the network's DNS."""

    async def release(self, container: Container) -> None:
        """The container stopped: remove its veths, proxies and DNS names, free its addresses and
        host ports, and clear the runtime fields of ``network_settings``. Idempotent."""

    async def forget(self, container: Container) -> None:
        """The container is being removed: drop any record of its endpoints."""

    async def restore(self, running: list[Container]) -> None:
        """Daemon start: recreate bridges, DNS servers and port proxies for ``running`` containers."""


class VolumeMounter(Protocol):
    """The volume service as the container lifecycle sees it."""

    async def validate(self, container: Container, image_config: dict[str, Any]) -> None:
        """At create: parse ``HostConfig.Binds``, ``HostConfig.Mounts``, ``HostConfig.Tmpfs``,
        ``VolumesFrom`` and the image's ``Volumes``; create missing named volumes (and anonymous
        ones) as docker does at create time; fill ``container.mounts`` with docker MountPoint dicts
        (Type, Name, Source, Destination, Driver, Mode, RW, Propagation). Raises InvalidParameter or
        NotFound with docker's messages; on error nothing it created remains."""

    def wants_image_content(self, container: Container) -> bool:
        """At create, after :meth:`validate`: True when :meth:`populate` needs the rootfs."""

    async def populate(self, container: Container, rootfs: Path) -> None:
        """At create, with the new container's rootfs mounted at ``rootfs``: fill empty volumes
        from the image content at their mount point (once, unless nocopy); refuse an image
        volume over a file. Raises SystemError_ (docker's texts)."""

    async def setup(self, container: Container, rootfs: Path) -> list[Mount]:
        """At start, with the image rootfs mounted at ``rootfs``: mount volumes and return the
        OCI mounts to add to the runtime spec (volumes, binds, tmpfs)."""

    async def teardown(self, container: Container) -> None:
        """The container stopped: undo whatever :meth:`setup` mounted on the host. Idempotent."""

    async def remove_container(self, container: Container, remove_anonymous: bool) -> None:
        """The container is being removed: drop references; delete its anonymous volumes when
        ``remove_anonymous`` (``rm -v``, ``--rm``). Named volumes are never removed here."""
