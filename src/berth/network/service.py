"""The network service berthd runs: docker's networks (Engine API v1.41 "Network" section, the
"docker network *" commands) and the ``NetworkAttacher`` contract with the container lifecycle.

* predefined ``bridge`` (Linux bridge ``config.bridge_name``, subnet from ``--bip`` or the free
  default pools), ``host`` and ``none``, made at first start and persisted;
* user bridge networks (``br-<12 hex>``) with firewall rules and a DNS server on the gateway;
* published ports through userland proxies; endpoints, IPAM state and settings in the
  ``networks`` table.

Live restore: :meth:`shutdown` stops what lives in berthd (DNS servers, proxies) and keeps the
bridges, rules and veths of networks with running containers; idle networks' bridges and rules
are removed and made again by the next :meth:`start`. :meth:`restore` re-creates proxies.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

from berth.containers.model import Container
from berth.daemon.config import DaemonConfig
from berth.daemon.events import EventBus
from berth.errors import (
    BerthError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    SystemError_,
    Unavailable,
)
from berth.network.datapath import Datapath, make_bridge, revive_bridge
from berth.network.firewall import Firewall, set_ip_forward
from berth.network.hostsfile import ResolvConf, container_resolv_conf, render_hosts
from berth.network.ipam import NetworkIPAM, choose_subnet
from berth.network.lifecycle import ERR_HOST, ContainerNetworking, NetnsPath, Resolve, Save
from berth.network.model import (
    DEFAULT_ADDRESS_POOLS,
    DEFAULT_BRIDGE_NAME,
    bridge_name_for,
    parse_address_pool,
)
from berth.network.publisher import PortPublisher
from berth.network.records import DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL, NetworkRecord
from berth.network.registry import NetworkRegistry
from berth.network.sandbox import (
    endpoints_config,
    hostname,
    network_mode,
    read_host_hosts,
    read_host_resolv_conf,
    shared_with,
    string_list,
)
from berth.network.spec import NetworkSpec, parse_create
from berth.network.views import filter_networks, network_view, prune_candidates
from berth.store.db import Database
from berth.timeutil import rfc3339_nano

log = logging.getLogger(__name__)

ERR_POOL_OVERLAP = "Pool overlaps with other one on this address space"


def firewall_prefix(bridge_name: str) -> str:
    """iptables chain prefix: ``BERTH`` for the default daemon, ``B-<bridge>`` for one with its own
    ``--bridge-name`` (test daemons), kept to 16 characters so ``<prefix>-ISOLATION-1`` fits
    iptables' 28-character chain names."""
    return "BERTH" if bridge_name == DEFAULT_BRIDGE_NAME else f"B-{bridge_name}"[:16]


def default_bridge_options(bridge_name: str) -> dict[str, str]:
    """``Options`` of the default bridge as dockerd 20.10 shows them."""
    return {
        "com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true",
        "com.docker.network.bridge.enable_ip_masquerade": "true",
        "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0", "com.docker.network.bridge.name": bridge_name,
        "com.docker.network.driver.mtu": "1500",
    }


class NetworkService:
    """Networks of one daemon. ``config``: bridge name, ``--bip``, address pools, DNS forwarding;
    ``db``: the metadata store; ``events``: the bus for ``network`` events."""

    def __init__(self, config: DaemonConfig, db: Database, events: EventBus) -> None:
        self.config = config
        self.events = events
        self.lock = asyncio.Lock()
        self.registry = NetworkRegistry(db)
        self.pools = tuple(parse_address_pool(p) for p in config.default_address_pools) or DEFAULT_ADDRESS_POOLS
        self.firewall = Firewall(prefix=firewall_prefix(config.bridge_name))
        self.publisher = PortPublisher()
        self._refresh_files: Callable[[Container], None] | None = None
        upstreams = [(server, 53) for server in read_host_resolv_conf().nameservers if ":" not in server] \
            if config.dns_forward else []
        self.datapath = Datapath(self.firewall, upstreams, lambda network_id: self.registry.get(network_id),
                                 self.registry.holding)
        self.endpoints = ContainerNetworking(self.registry, self.publisher, events.publish, self.lock)

    def bind_containers(self, resolve: Resolve, save: Save, netns_path: NetnsPath,
                        refresh_files: Callable[[Container], None] | None = None) -> None:
        """Wiring from the container service: ``resolve(name_or_id)`` -> Container (raises NotFound
        ``No such container: x``), ``save(container)`` persists it, ``netns_path(container)`` is
        ``/proc/<pid>/ns/net`` of a running container or None, ``refresh_files(container)`` rewrites
        a running container's /etc/hosts and resolv.conf after a live connect or disconnect."""
        self.endpoints.resolve, self.endpoints.save, self.endpoints.netns_path = resolve, save, netns_path
        self._refresh_files = refresh_files

    # ---- daemon start and stop

    async def start(self) -> None:
        """Load the networks, create the predefined ones on first start, bring every bridge
        network's bridge, rules and DNS up, and turn on IPv4 forwarding as dockerd does."""
        try:
            await asyncio.to_thread(set_ip_forward, True)
        except OSError as exc:
            log.warning("cannot enable IPv4 forwarding: %s", exc)
        await asyncio.to_thread(self.firewall.setup)
        async with self.lock:
            self.registry.load()
            for name, driver in (("none", DRIVER_NULL), ("host", DRIVER_HOST)):
                if self.registry.by_name(name) is None:
                    self.registry.save(NetworkRecord(new_network_id(), name, driver, rfc3339_nano()))
            if self.registry.by_name("bridge") is None:
                await self._create_default_bridge()
            for net in self.registry.all():
                try:
                    await self._bring_up(net)
                except BerthError as exc:
                    log.error("network %s (%s) is not usable: %s", net.name, net.bridge, exc)

    async def _bring_up(self, net: NetworkRecord) -> None:
        if net.driver == DRIVER_BRIDGE:
            movable = not net.user_subnet and not net.endpoints and not (net.predefined and self.config.bridge_ip)
            others = [subnet for subnet in self._subnets_in_use() if net.ipam is None or subnet != net.ipam.subnet]
            if await asyncio.to_thread(revive_bridge, net, others, self.pools, movable):
                self.registry.save(net)
        await self.datapath.up(net)

    async def _create_default_bridge(self) -> None:
        net = NetworkRecord(new_network_id(), "bridge", DRIVER_BRIDGE, rfc3339_nano(), bridge=self.config.bridge_name,
                            options=default_bridge_options(self.config.bridge_name))
        in_use = self._subnets_in_use()
        if self.config.bridge_ip:
            try:
                bip = IPv4Interface(self.config.bridge_ip)
            except ValueError as exc:
                raise InvalidParameter(f"invalid --bip {self.config.bridge_ip!r}: {exc}") from exc
            net.ipam = await asyncio.to_thread(make_bridge, net, lambda _: NetworkIPAM.create(
                bip.network, bip.ip, network_name="bridge", network_id=net.id))
            net.ipam_config = [{"Subnet": str(bip.network), "Gateway": str(bip.ip)}]
        else:
            net.ipam = await asyncio.to_thread(make_bridge, net, lambda routes: NetworkIPAM.create(
                choose_subnet(routes, in_use, self.pools), network_name="bridge", network_id=net.id))
            net.ipam_config = [{"Subnet": str(net.ipam.subnet)}]
        self.registry.save(net)

    async def shutdown(self) -> None:
        """Stop proxies and DNS servers; remove bridges and rules of networks no running container
        uses (and berth's chains when none is used). Veths and used bridges stay (live restore)."""
        async with self.lock:
            await self.publisher.close_all()
            await self.datapath.stop_all_dns()
            bridges = [net for net in self.registry.all() if net.driver == DRIVER_BRIDGE]
            for net in bridges:
                if not net.endpoints:
                    try:
                        await self.datapath.down(net)
                    except BerthError as exc:
                        log.warning("cannot remove bridge %s: %s", net.bridge, exc)
            if not any(net.endpoints for net in bridges):
                await asyncio.to_thread(self.firewall.teardown_all)

    # ---- networks ("docker network create/ls/inspect/rm/prune")

    async def create(self, body: dict[str, Any]) -> dict[str, str]:
        """``POST /networks/create``: returns ``{"Id": ..., "Warning": ""}``.

        Raises Conflict ``network with name X already exists``, Forbidden ``Pool overlaps with
        other one on this address space``, and the request errors of ``spec.parse_create``.
        """
        spec = parse_create(body)
        async with self.lock:
            if self.registry.by_name(spec.name) is not None:
                raise Conflict(f"network with name {spec.name} already exists")
            in_use = self._subnets_in_use()
            if spec.subnet is not None and any(spec.subnet.overlaps(other) for other in in_use):
                raise Forbidden(ERR_POOL_OVERLAP)
            net = self._new_user_network(spec)
            net.ipam = await asyncio.to_thread(make_bridge, net, lambda routes: NetworkIPAM.create(
                spec.subnet or choose_subnet(routes, in_use, self.pools), spec.gateway, spec.ip_range,
                spec.aux_addresses, network_name=net.name, network_id=net.id))
            net.ipam_config = spec.ipam_config or [{"Subnet": str(net.ipam.subnet), "Gateway": str(net.ipam.gateway)}]
            try:
                self.registry.save(net)
                await self.datapath.up(net)
            except BaseException:
                await self._destroy(net, event=False)
                raise
            self._event("create", net)
        return {"Id": net.id, "Warning": ""}

    def _new_user_network(self, spec: NetworkSpec) -> NetworkRecord:
        net_id = new_network_id()
        name = spec.bridge_name or bridge_name_for(net_id)
        user = next((net for net in self.registry.all() if net.bridge == name), None)
        if user is not None:
            raise Conflict(f"bridge name {name} is already in use by network {user.name}")
        return NetworkRecord(
            net_id, spec.name, DRIVER_BRIDGE, rfc3339_nano(), bridge=name, internal=spec.internal,
            attachable=spec.attachable, labels=spec.labels, options=spec.options, ipam_options=spec.ipam_options,
            mtu=spec.mtu, masquerade=spec.masquerade, user_subnet=spec.subnet is not None)

    def _subnets_in_use(self) -> list[IPv4Network]:
        return [net.ipam.subnet for net in self.registry.all() if net.ipam is not None]

    def list(self, filters: dict[str, builtins.list[str]] | None = None) -> builtins.list[dict[str, Any]]:
        """``GET /networks``: networks matching ``filters`` (see ``views.filter_networks``)."""
        return [network_view(net, containers=False) for net in filter_networks(self.registry.all(), filters or {})]

    def inspect(self, ref: str, scope: str = "") -> dict[str, Any]:
        """``GET /networks/{id}`` by ID, name or ID prefix. Raises NotFound ``network X not found``."""
        net = self.registry.find(ref)
        if scope and scope != "local":
            raise NotFound(f"network {ref} not found")
        return network_view(net)

    async def remove(self, ref: str) -> None:
        """``DELETE /networks/{id}``. Raises NotFound, Forbidden for predefined networks and for
        networks with active endpoints (dockerd's wording)."""
        async with self.lock:
            net = self.registry.find(ref)
            self._check_removable(net)
            await self._destroy(net)

    def _check_removable(self, net: NetworkRecord) -> None:
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if net.endpoints:
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} has active endpoints")

    async def _destroy(self, net: NetworkRecord, event: bool = True) -> None:
        await self.datapath.down(net)
        self.registry.delete(net)
        if event:
            self._event("destroy", net)

    async def prune(self, filters: dict[str, builtins.list[str]] | None = None) -> dict[str, Any]:
        """``POST /networks/prune``: remove user networks without active endpoints;
        ``{"NetworksDeleted": [names] or None}``."""
        deleted = []
        async with self.lock:
            for net in prune_candidates(self.registry.all(), filters or {}):
                await self._destroy(net)
                deleted.append(net.name)
        return {"NetworksDeleted": deleted or None}

    def _event(self, action: str, net: NetworkRecord) -> None:
        self.events.publish("network", action, net.id, {"name": net.name, "type": net.driver})

    # ---- "docker network connect/disconnect"

    def _containers(self) -> tuple[Resolve, Save]:
        lifecycle = self.endpoints
        if lifecycle.resolve is None or lifecycle.save is None:
            raise Unavailable("containers are not available: the container service is not running")
        return lifecycle.resolve, lifecycle.save

    async def connect(self, ref: str, container_ref: str, endpoint_config: dict[str, Any] | None = None) -> None:
        """``POST /networks/{id}/connect``; a running container gets its new interface at once
        (no default route: the first network keeps it). Raises NotFound, InvalidParameter,
        Forbidden ``endpoint with name X already exists in network Y``."""
        resolve, save = self._containers()
        async with self.lock:
            net = self.registry.find(ref)
            container = resolve(container_ref)
            self.endpoints.check_connectable(container, net)
            config = dict(endpoint_config or {})
            self.endpoints.check_endpoint(net, config, container)
            ns = self.endpoints.netns_path(container) if self.endpoints.netns_path else None
            if ns is not None:
                await self._connect_live(net, container, config, ns)
            endpoints_config(container)[net.name] = config
            self.endpoints.refresh_settings(container)
            save(container)
            if ns is not None:
                self._files_changed(container)
                self.endpoints.event("connect", net, container.id)

    def _files_changed(self, container: Container) -> None:
        refresh = self._refresh_files
        if refresh is not None:
            try:
                refresh(container)
            except OSError as exc:
                log.warning("updating /etc files of %s failed: %s", container.id, exc)

    async def _connect_live(self, net: NetworkRecord, container: Container, config: dict[str, Any], ns: str) -> None:
        holding = [other.endpoints[container.id] for other in self.registry.holding(container.id)]
        used = {ep.ifname for ep in holding}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        routes = not net.internal and not any(ep.routes for ep in holding)
        ep = self.endpoints.allocate_endpoint(net, container, config, ifname, routes)
        try:
            await self.endpoints.plug(net, ep, ns)
        except BaseException:
            self.endpoints.free_endpoint(net, container.id)
            raise

    async def disconnect(self, ref: str, container_ref: str, force: bool = False) -> None:
        """``POST /networks/{id}/disconnect``. With ``force`` an endpoint whose container is gone
        is removed by name. Raises NotFound, InvalidParameter, SystemError_ ``container X is not
        connected to network Y`` (dockerd's answer, a 500)."""
        resolve, save = self._containers()
        async with self.lock:
            net = self.registry.find(ref)
            try:
                container = resolve(container_ref)
            except NotFound:
                if not force:
                    raise
                await self._drop_stale_endpoint(net, container_ref)
                return
            if net.driver == DRIVER_HOST or network_mode(container) == "host":
                raise InvalidParameter(ERR_HOST)
            configs = endpoints_config(container)
            if net.name not in configs:
                raise SystemError_(f"container {container.id} is not connected to network {net.name}")
            ep = net.endpoints.get(container.id)
            if ep is not None:
                holding = self.registry.holding(container.id)
                if holding and holding[0].id == net.id:  # the ports' target address goes away
                    await self.publisher.unpublish(container.id)
                await self.endpoints.unplug(ep)
                self.endpoints.free_endpoint(net, container.id)
                self.endpoints.event("disconnect", net, container.id)
            del configs[net.name]
            self.endpoints.refresh_settings(container)
            if ep is not None:
                self._files_changed(container)
            save(container)

    async def _drop_stale_endpoint(self, net: NetworkRecord, container_ref: str) -> None:
        ep = next((ep for ep in net.endpoints.values()
                   if container_ref in (ep.container_name, ep.container_id) or ep.container_id.startswith(container_ref)),
                  None)
        if ep is None:
            raise NotFound(f"endpoint {container_ref} not found")
        await self.publisher.unpublish(ep.container_id)
        await self.endpoints.unplug(ep)
        self.endpoints.free_endpoint(net, ep.container_id)
        self.endpoints.event("disconnect", net, ep.container_id)

    # ---- NetworkAttacher (berth.containers.interfaces)

    async def validate(self, container: Container) -> builtins.list[str]:
        """See ``ContainerNetworking.validate``."""
        return await self.endpoints.validate(container)

    async def prepare(self, container: Container) -> None:
        """See ``ContainerNetworking.prepare``."""
        await self.endpoints.prepare(container)

    async def attach(self, container: Container, netns_path: str) -> None:
        """See ``ContainerNetworking.attach``."""
        await self.endpoints.attach(container, netns_path)

    async def release(self, container: Container) -> None:
        """See ``ContainerNetworking.release``."""
        await self.endpoints.release(container)

    async def forget(self, container: Container) -> None:
        """See ``ContainerNetworking.forget``."""
        await self.endpoints.forget(container)

    async def restore(self, running: builtins.list[Container]) -> None:
        """See ``ContainerNetworking.restore``."""
        await self.endpoints.restore(running)

    def hosts_file(self, container: Container) -> str:
        """/etc/hosts: localhost lines, ``--add-host`` and default-bridge ``--link`` entries, then
        the container's addresses with its hostname; ``--network host`` gets the host's file plus
        ``--add-host``; ``container:<x>`` gets x's file ("docker run", "Network settings")."""
        shared = shared_with(container)
        if shared is not None and self.endpoints.resolve is not None:
            return self.hosts_file(self.endpoints.resolve(shared))
        default = self.registry.by_name("bridge")
        gateway = str(default.ipam.gateway) if default is not None and default.ipam is not None else ""
        extra, links = self.endpoints.hosts_entries(container, gateway)
        if network_mode(container) == "host":
            return read_host_hosts() + "".join(f"{e.ip}\t{' '.join(e.names)}\n" for e in extra)
        addresses = [str(net.endpoints[container.id].ip) for net in self.registry.holding(container.id)]
        return render_hosts(hostname(container), addresses, str(container.config.get("Domainname") or ""),
                            extra, links)

    def resolv_conf(self, container: Container) -> str:
        """/etc/resolv.conf: on a user network berth's DNS on the gateway; on the default bridge and
        ``none`` the host's non-loopback servers; with ``host`` the host's file; ``--dns``,
        ``--dns-search``, ``--dns-option`` applied as dockerd does (``hostsfile.container_resolv_conf``)."""
        shared = shared_with(container)
        if shared is not None and self.endpoints.resolve is not None:
            return self.resolv_conf(self.endpoints.resolve(shared))
        host = read_host_resolv_conf()
        hc = container.host_config
        dns, search, options = string_list(hc.get("Dns")), string_list(hc.get("DnsSearch")), \
            string_list(hc.get("DnsOptions"))
        if network_mode(container) == "host":
            return ResolvConf(tuple(dns) or host.nameservers, tuple(search) or host.search,
                              tuple(options) or host.options, host.other).render()
        holding = self.registry.holding(container.id)
        primary = holding[0] if holding else self.registry.get(network_mode(container))
        # Any user network gives the container berth's DNS (dockerd switches a default-bridge
        # container to its embedded DNS when it joins one); the primary one's when it is one.
        gateways = [str(net.ipam.gateway) for net in ([primary] if primary is not None else []) + holding
                    if net.user_defined and net.ipam is not None]
        if gateways:
            return container_resolv_conf(host, gateways[0], dns_search=search, dns_options=options).render()
        return container_resolv_conf(host, None, dns, search, options).render()


def new_network_id() -> str:
    """64 hex characters, like dockerd's network IDs."""
    return secrets.token_hex(32)
