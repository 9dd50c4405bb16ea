"""The network side of a container's life: ``NetworkAttacher`` (berth.containers.interfaces).

create -> :meth:`validate`; start -> :meth:`prepare` (addresses, MACs, host ports), hosts and
resolv.conf, :meth:`attach` (veths into the container's namespace); exit -> :meth:`release`;
remove -> :meth:`forget`; daemon start -> :meth:`restore`. Behaviour follows docker's
"Networking overview", "Bridge network driver", "Published ports" and "docker run" (network
settings) pages; errors carry dockerd 20.10's wording.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Interface
from typing import Any

from pyroute2 import IPRoute

from berth.containers.model import Container
from berth.errors import BerthError, Conflict, Forbidden, InvalidParameter, NotFound
from berth.network import bridge, netns
from berth.network.hostsfile import HOST_GATEWAY, HostEntry, link_entry, parse_extra_host
from berth.network.ipam import mac_for_ip
from berth.network.model import new_veth_name
from berth.network.ports import exposed_ports, mappings_from_view, port_requests, ports_view
from berth.network.publisher import PortPublisher
from berth.network.records import DRIVER_HOST, DRIVER_NULL, EndpointRecord, NetworkRecord
from berth.network.registry import NetworkRegistry
from berth.network.sandbox import (
    check_mode_conflicts,
    dns_names,
    endpoints_config,
    hostname,
    mode_warnings,
    network_mode,
    parse_link,
    parse_mac,
    requested_ip,
    shared_with,
    string_list,
)
from berth.network.views import endpoint_settings, network_settings

log = logging.getLogger(__name__)

Resolve = Callable[[str], Container]
Save = Callable[[Container], None]
NetnsPath = Callable[[Container], "str | None"]
PublishEvent = Callable[[str, str, str, dict[str, str]], Any]

ERR_ALIAS = "network-scoped alias is supported only for containers in user defined networks"
ERR_IP_DEFAULT = "user specified IP address is supported on user defined networks only"
ERR_IP_SUBNET = "user specified IP address is supported only when connecting to networks with user configured subnets"
ERR_HOST = "container cannot be disconnected from host network or connected to host network"
ERR_NONE = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
ERR_SHARED = ("container sharing network namespace with another container or host cannot be connected to any "
              "other network")


class ContainerNetworking:
    """Endpoints of containers on the daemon's networks.

    ``registry``: the networks; ``publisher``: port proxies; ``publish_event``: ``EventBus.publish``;
    ``lock``: the service lock every network change holds. ``resolve``/``save``/``netns_path``
    come from the container service (``NetworkService.bind_containers``).
    """

    def __init__(self, registry: NetworkRegistry, publisher: PortPublisher, publish_event: PublishEvent,
                 lock: asyncio.Lock) -> None:
        self.registry = registry
        self.publisher = publisher
        self.publish_event = publish_event
        self.lock = lock
        self.resolve: Resolve | None = None
        self.save: Save | None = None
        self.netns_path: NetnsPath | None = None

    # ---- create

    async def validate(self, container: Container) -> list[str]:
        """See ``NetworkAttacher.validate``: checks the mode, endpoints, links, ports and extra hosts;
        normalises ``networking_config`` (keys are network names; the primary network is present;
        user networks get the short ID as alias and ``--link`` as endpoint links, as dockerd
        does) and fills ``network_settings``. Returns dockerd's warnings. Raises NotFound or
        InvalidParameter."""
        hc = container.host_config
        requests = port_requests(container.config, hc)
        for spec in string_list(hc.get("ExtraHosts")):
            parse_extra_host(spec)
        if container.config.get("MacAddress"):
            parse_mac(str(container.config["MacAddress"]))
        check_mode_conflicts(container, bool(requests))
        shared = shared_with(container)
        if shared is not None:
            self._check_shared(container, shared)
            container.network_settings = network_settings({})
            return []
        configs = self._named_configs(container)
        for name, config in configs.items():
            net = self.registry.get(name)
            if net is not None:  # a missing network fails the start, not the create (dockerd)
                self.check_endpoint(net, config, container)
        self._check_links(container, configs)
        container.networking_config["EndpointsConfig"] = configs
        container.network_settings = network_settings({name: endpoint_settings(cfg) for name, cfg in configs.items()})
        return mode_warnings(container)

    def _named_configs(self, container: Container) -> dict[str, dict[str, Any]]:
        """EndpointsConfig keyed by network name (the primary first). A network that does not exist
        keeps the name given: dockerd creates such a container and fails its start with
        ``network X not found`` (404), so ``docker run`` does not mistake it for a missing image."""

        def name_of(ref: str) -> str:
            net = self.registry.get(ref)
            return net.name if net is not None else ref

        configs: dict[str, dict[str, Any]] = {name_of(network_mode(container)): {}}
        for key, config in endpoints_config(container).items():
            # newer docker CLIs key the primary endpoint by the mode, "default" included
            configs[name_of("bridge" if key == "default" else key)] = config
        drivers = {net.driver for net in (self.registry.get(name) for name in configs) if net is not None}
        if len(configs) > 1 and DRIVER_HOST in drivers:
            raise InvalidParameter(ERR_HOST)
        if len(configs) > 1 and DRIVER_NULL in drivers:
            raise InvalidParameter(ERR_NONE)
        return configs

    def check_endpoint(self, net: NetworkRecord, config: dict[str, Any], container: Container) -> None:
        """Check one ``EndpointsConfig`` value for ``net`` ("docker run --network-alias/--ip/--mac-address")
        and normalise it (MAC lower-cased, short ID added to a user network's aliases). Raises
        InvalidParameter with dockerd's wording."""
        aliases = string_list(config.get("Aliases"))
        if aliases and not net.user_defined:
            raise InvalidParameter(ERR_ALIAS)
        ip = requested_ip(config)
        if ip is not None:
            if not net.user_defined:
                raise InvalidParameter(ERR_IP_DEFAULT)
            if not net.user_subnet or net.ipam is None:
                raise InvalidParameter(ERR_IP_SUBNET)
            if ip not in net.ipam.subnet:
                raise InvalidParameter(f"Invalid address {ip}: It does not belong to any of this network's subnets")
        if config.get("MacAddress"):
            config["MacAddress"] = parse_mac(str(config["MacAddress"]))
        if net.user_defined and container.short_id not in aliases:
            config["Aliases"] = [*aliases, container.short_id]

    def _check_links(self, container: Container, configs: dict[str, dict[str, Any]]) -> None:
        links = string_list(container.host_config.get("Links"))
        if not links:
            return
        primary = self.registry.get(network_mode(container))
        if primary is None:
            return  # the start will fail on the missing network
        if primary.driver == DRIVER_HOST:
            raise InvalidParameter("conflicting options: host type networking can't be used with links. "
                                   "This would result in undefined behavior")
        for spec in links:
            name, _ = parse_link(spec)
            self._linked_container(name)
        if primary.user_defined:  # on user networks a link is a DNS alias of the endpoint
            config = configs[primary.name]
            config["Links"] = [*string_list(config.get("Links")), *(":".join(parse_link(s)) for s in links)]
            container.host_config["Links"] = None

    def _linked_container(self, name: str) -> Container | None:
        if self.resolve is None:
            return None
        try:
            return self.resolve(name)
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc.message}") from None

    def _check_shared(self, container: Container, target: str) -> None:
        if self.resolve is not None and self.resolve(target).id == container.id:
            raise InvalidParameter("cannot join own network")

    # ---- start

    async def prepare(self, container: Container) -> None:
        """See ``NetworkAttacher.prepare``. Addresses come from each network's IPAM (``--ip``
        honoured), MACs from the address unless configured, host ports from the publisher, whose
        proxies start here so a taken port fails the start before anything runs. On an error
        every allocation of this call is undone. After a successful prepare the caller must call
        :meth:`release` when the start fails later."""
        async with self.lock:
            await self._free_all(container, events=False)
            if shared_with(container) is not None or network_mode(container) in ("host", "none"):
                self.refresh_settings(container)
                return
            made: list[tuple[NetworkRecord, EndpointRecord]] = []
            try:
                for index, (net, config) in enumerate(self._networks_in_order(container)):
                    routes = not net.internal and not any(ep.routes for _, ep in made)
                    made.append((net, self.allocate_endpoint(net, container, config, f"eth{index}", routes)))
                requests = port_requests(container.config, container.host_config)
                if requests and made:
                    first = made[0][1]
                    await self.publisher.publish(container.id, f"{container.name} ({first.endpoint_id})",
                                                 str(first.ip), requests)
            except BaseException:
                for net, _ in made:
                    self.free_endpoint(net, container.id)
                raise
            self.refresh_settings(container)

    def _networks_in_order(self, container: Container) -> list[tuple[NetworkRecord, dict[str, Any]]]:
        """The configured networks, the primary (``NetworkMode``) first, then by name. Raises
        NotFound ``network X not found`` for one removed since create."""
        configs = endpoints_config(container)
        primary = self.registry.get(network_mode(container))
        names = sorted(configs, key=lambda name: (primary is None or name != primary.name, name))
        return [(self.registry.find(name), configs[name]) for name in names]

    def allocate_endpoint(self, net: NetworkRecord, container: Container, config: dict[str, Any],
                          ifname: str, routes: bool) -> EndpointRecord:
        """Hand out an address (and MAC) on ``net`` to ``container`` and record the endpoint.

        Raises the IPAM's errors (``Address already in use``, pool exhausted), InvalidParameter for
        a network without addresses."""
        if net.ipam is None:
            raise InvalidParameter(f"network {net.name} does not give out addresses")
        ip = net.ipam.allocate(requested_ip(config))
        mac = config.get("MacAddress") or (container.config.get("MacAddress") if routes else None)
        ep = EndpointRecord(
            endpoint_id=secrets.token_hex(32), container_id=container.id, container_name=container.name,
            address=IPv4Interface(f"{ip}/{net.ipam.subnet.prefixlen}"),
            mac=parse_mac(str(mac)) if mac else mac_for_ip(ip), host_ifname=new_veth_name(), ifname=ifname,
            routes=routes, dns_names=dns_names(container, config) if net.user_defined else [],
            links=dict(parse_link(spec)[::-1] for spec in string_list(config.get("Links"))),
        )
        net.endpoints[container.id] = ep
        try:
            self.registry.save(net)
        except BaseException:
            net.endpoints.pop(container.id, None)
            net.ipam.release(ip)
            raise
        return ep

    def free_endpoint(self, net: NetworkRecord, container_id: str) -> EndpointRecord | None:
        """Drop ``container_id``'s endpoint on ``net`` and give its address back (idempotent)."""
        ep = net.endpoints.pop(container_id, None)
        if ep is not None:
            if net.ipam is not None:
                net.ipam.release(ep.ip)
            self.registry.save(net)
        return ep

    async def attach(self, container: Container, netns_path: str) -> None:
        """See ``NetworkAttacher.attach``: one veth pair per prepared endpoint, the routed one
        with the default route; ``--network none`` only gets ``lo`` up. On an error the veths made
        here are deleted (addresses stay until :meth:`release`)."""
        async with self.lock:
            mode = network_mode(container)
            if mode == "none":
                await asyncio.to_thread(loopback_up, netns_path)
            plugged: list[EndpointRecord] = []
            try:
                for net in self.registry.holding(container.id):
                    ep = net.endpoints[container.id]
                    await self.plug(net, ep, netns_path)
                    plugged.append(ep)
            except BaseException:
                for ep in plugged:
                    await self.unplug(ep)
                raise
            settings = container.network_settings
            settings["SandboxKey"], settings["SandboxID"] = netns_path, secrets.token_hex(32)
            for net in self.registry.holding(container.id):
                self.event("connect", net, container.id)

    async def plug(self, net: NetworkRecord, ep: EndpointRecord, netns_path: str) -> None:
        """Create ``ep``'s veth pair between ``net``'s bridge and the namespace at ``netns_path``."""
        assert net.ipam is not None
        await asyncio.to_thread(partial(
            bridge.attach_endpoint, net.bridge, netns_path, ep.ifname, address_cidr=str(ep.address), mac=ep.mac,
            gateway=str(net.ipam.gateway) if ep.routes else None, host_ifname=ep.host_ifname, mtu=net.mtu))

    async def unplug(self, ep: EndpointRecord) -> None:
        """Delete ``ep``'s veth pair; failures are logged (the kernel drops it with the namespace)."""
        try:
            await asyncio.to_thread(bridge.detach_endpoint, ep.host_ifname)
        except BerthError as exc:
            log.warning("cannot delete %s of container %s: %s", ep.host_ifname, ep.container_id[:12], exc)

    # ---- stop, remove, daemon start

    async def release(self, container: Container) -> None:
        """See ``NetworkAttacher.release``: proxies closed, veths deleted, addresses freed,
        ``network disconnect`` events sent, runtime fields of ``network_settings`` cleared
        (NetworkID, SandboxID and SandboxKey stay, as dockerd shows a stopped container)."""
        async with self.lock:
            await self._free_all(container, events=True)
            self.refresh_settings(container)

    async def forget(self, container: Container) -> None:
        """See ``NetworkAttacher.forget``: nothing of the container stays in any network record."""
        async with self.lock:
            await self._free_all(container, events=False)

    async def _free_all(self, container: Container, events: bool) -> None:
        await self.publisher.unpublish(container.id)
        for net in self.registry.holding(container.id):
            await self.unplug(net.endpoints[container.id])
            self.free_endpoint(net, container.id)
            if events:
                self.event("disconnect", net, container.id)

    async def restore(self, running: list[Container]) -> None:
        """See ``NetworkAttacher.restore``: endpoints of containers that stopped while the daemon
        was down are freed; proxies of ``running`` are started again from their recorded
        ``NetworkSettings.Ports`` (bridges and veths survived with the containers)."""
        alive = {container.id for container in running}
        async with self.lock:
            for net in self.registry.all():
                for container_id in [cid for cid in net.endpoints if cid not in alive]:
                    await self.unplug(net.endpoints[container_id])
                    self.free_endpoint(net, container_id)
            for container in running:
                holding = self.registry.holding(container.id)
                mappings = mappings_from_view(container.network_settings.get("Ports"))
                if not holding or not mappings:
                    continue
                first = holding[0].endpoints[container.id]
                await self.publisher.unpublish(container.id)
                await self.publisher.restore(container.id, f"{container.name} ({first.endpoint_id})",
                                             str(first.ip), mappings)

    # ---- views

    def refresh_settings(self, container: Container) -> None:
        """Rebuild ``container.network_settings`` from its endpoint configs and live endpoints."""
        old = container.network_settings or {}
        old_networks = old.get("Networks") or {}
        networks: dict[str, dict[str, Any]] = {}
        live = False
        for name, config in endpoints_config(container).items():
            net = self.registry.get(name)
            ep = net.endpoints.get(container.id) if net is not None else None
            live = live or ep is not None
            gateway = str(net.ipam.gateway) if net is not None and net.ipam is not None else ""
            network_id = net.id if net is not None and (ep is not None or net.driver in (DRIVER_HOST, DRIVER_NULL)) \
                else (old_networks.get(name) or {}).get("NetworkID", "")
            networks[name] = endpoint_settings(config, network_id, ep, gateway)
        ports = None
        if live:
            ports = ports_view(exposed_ports(container.config, container.host_config),
                               self.publisher.mappings(container.id))
        container.network_settings = network_settings(networks, ports, old.get("SandboxKey", ""),
                                                      old.get("SandboxID", ""))

    def event(self, action: str, net: NetworkRecord, container_id: str) -> None:
        """Publish ``network <action>`` with dockerd's attributes (name, type, container)."""
        self.publish_event("network", action, net.id, {"container": container_id, "name": net.name,
                                                       "type": net.driver})

    def hosts_entries(self, container: Container, default_gateway: str) -> tuple[list[HostEntry], list[HostEntry]]:
        """``(extra_hosts, links)`` for /etc/hosts: ``--add-host`` (``host-gateway`` becomes
        ``default_gateway``) and, on the default bridge, legacy ``--link`` entries of running
        linked containers."""
        extra = []
        for spec in string_list(container.host_config.get("ExtraHosts")):
            entry = parse_extra_host(spec)
            extra.append(HostEntry(default_gateway, entry.names) if entry.ip == HOST_GATEWAY else entry)
        links: list[HostEntry] = []
        default = self.registry.by_name("bridge")
        for spec in string_list(container.host_config.get("Links")):
            name, alias = parse_link(spec)
            target = self._linked_container(name)
            if target is None:
                continue
            if not target.state.running:
                raise Conflict(f"Cannot link to a non running container: /{target.name} AS /{container.name}/{alias}")
            ep = default.endpoints.get(target.id) if default is not None else None
            if ep is None:
                raise Conflict(f"Cannot link to /{target.name}, as it does not belong to the default network")
            links.append(link_entry(str(ep.ip), alias, hostname(target), target.name))
        return extra, links

    def check_connectable(self, container: Container, net: NetworkRecord) -> None:
        """Raise dockerd's errors for connecting ``container`` to ``net`` ("docker network connect")."""
        mode = network_mode(container)
        if net.driver == DRIVER_HOST or mode == "host":
            raise InvalidParameter(ERR_HOST)
        if net.driver == DRIVER_NULL or mode == "none":
            raise InvalidParameter(ERR_NONE)
        if shared_with(container) is not None:
            raise InvalidParameter(ERR_SHARED)
        if net.name in endpoints_config(container) or net.id in endpoints_config(container):
            raise Forbidden(f"endpoint with name {container.name} already exists in network {net.name}")


def loopback_up(netns_path: str) -> None:
    """Bring ``lo`` up in the namespace at ``netns_path`` (``--network none`` has nothing else)."""

    def body() -> None:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname="lo")
            if index:
                ipr.link("set", index=index[0], state="up")

    netns.run_in_netns(netns_path, body)
