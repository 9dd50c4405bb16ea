"""Pure parts of the network service: port bindings, create requests, JSON views, filters,
container network settings and the DNS name table. Expected values are dockerd 20.10's."""

from __future__ import annotations

from ipaddress import IPv4Address as A
from ipaddress import IPv4Interface as I
from ipaddress import IPv4Network as N

import pytest

from berth.containers.model import Container
from berth.errors import Forbidden, InvalidParameter, NotFound, Unavailable
from berth.network.ipam import NetworkIPAM
from berth.network.model import PortMapping
from berth.network.names import NetworkNames
from berth.network.ports import (
    PortRequest,
    exposed_ports,
    mappings_from_view,
    parse_host_ports,
    parse_port_key,
    port_requests,
    ports_view,
)
from berth.network.records import EndpointRecord, NetworkRecord
from berth.network.sandbox import (
    check_mode_conflicts,
    dns_names,
    mode_warnings,
    network_mode,
    parse_link,
    parse_mac,
    shared_with,
)
from berth.network.spec import ERR_NO_IPV6_POOL, ERR_SWARM, parse_create
from berth.network.views import (
    endpoint_settings,
    filter_networks,
    network_settings,
    network_view,
    prune_candidates,
)

CID = "b97699e37495894d2d7dd6435939b6c9c7d128dc437cee5d6f39a744704f5c7d"


# ---- ports

@pytest.mark.parametrize(("key", "parsed"), [("80/tcp", (80, "tcp")), ("53/udp", (53, "udp")), ("8080", (8080, "tcp")),
                                             ("443/TCP", (443, "tcp"))])
def test_parse_port_key(key, parsed):
    assert parse_port_key(key) == parsed


@pytest.mark.parametrize(("key", "message"), [
    ("abc/tcp", 'invalid port specification: "abc"'),
    ("70000/tcp", 'invalid port specification: "70000"'),
    ("0/tcp", 'invalid port specification: "0"'),
    ("80/sctp", "invalid proto: sctp"),
])
def test_parse_port_key_errors(key, message):
    with pytest.raises(InvalidParameter) as err:
        parse_port_key(key)
    assert err.value.message == message


@pytest.mark.parametrize(("text", "ports"), [("", (0, 0)), ("8080", (8080, 8080)), ("9000-9010", (9000, 9010)),
                                             ("0", (0, 0))])
def test_parse_host_ports(text, ports):
    assert parse_host_ports(text) == ports


@pytest.mark.parametrize("text", ["abc", "70000", "9010-9000", "1-"])
def test_parse_host_ports_errors(text):
    with pytest.raises(InvalidParameter, match="invalid port specification"):
        parse_host_ports(text)


def test_port_requests_follow_bindings_then_publish_all():
    config = {"ExposedPorts": {"99/tcp": {}, "53/udp": {}, "80/tcp": {}}}
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"},
                                               {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                                    "53/udp": [{"HostIp": "", "HostPort": ""}]},
                   "PublishAllPorts": True}
    assert port_requests(config, host_config) == [
        PortRequest("udp", 53),
        PortRequest("tcp", 80, "", (8080, 8080)),
        PortRequest("tcp", 80, "127.0.0.1", (8081, 8081)),
        PortRequest("tcp", 99),
    ]
    assert port_requests(config, {**host_config, "PublishAllPorts": False}) == port_requests(config, host_config)[:3]


def test_port_requests_reject_a_bad_host_ip():
    with pytest.raises(InvalidParameter, match="invalid host IP address: nonsense"):
        port_requests({}, {"PortBindings": {"80/tcp": [{"HostIp": "nonsense", "HostPort": "1"}]}})


def test_ports_view_matches_dockerd():
    exposed = exposed_ports({"ExposedPorts": {"99/tcp": {}}}, {"PortBindings": {"80/tcp": [], "53/udp": []}})
    assert exposed == [(53, "udp"), (80, "tcp"), (99, "tcp")]
    view = ports_view(exposed, [PortMapping("tcp", "0.0.0.0", 8080, 80), PortMapping("tcp", "::", 8080, 80),
                                PortMapping("udp", "0.0.0.0", 32768, 53)])
    assert view == {
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
        "99/tcp": None,
    }
    assert list(view) == ["53/udp", "80/tcp", "99/tcp"]
    assert mappings_from_view(view) == [PortMapping("udp", "0.0.0.0", 32768, 53),
                                        PortMapping("tcp", "0.0.0.0", 8080, 80), PortMapping("tcp", "::", 8080, 80)]


# ---- create requests

def test_parse_create_full_request():
    spec = parse_create({
        "Name": "web", "Driver": "bridge", "Internal": True, "Attachable": True, "Labels": {"a": "b"},
        "Options": {"com.docker.network.bridge.name": "webbr0", "com.docker.network.driver.mtu": "1400"},
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": "10.99.0.0/24", "IPRange": "10.99.0.128/25", "Gateway": "10.99.0.254",
                             "AuxiliaryAddresses": {"router": "10.99.0.2"}}]},
    })
    assert (spec.name, spec.internal, spec.attachable, spec.labels) == ("web", True, True, {"a": "b"})
    assert (spec.bridge_name, spec.mtu, spec.masquerade) == ("webbr0", 1400, True)
    assert (spec.subnet, spec.ip_range, spec.gateway) == (N("10.99.0.0/24"), N("10.99.0.128/25"), A("10.99.0.254"))
    assert spec.aux_addresses == {"router": A("10.99.0.2")}
    assert spec.ipam_options == {}
    assert spec.ipam_config == [{"Subnet": "10.99.0.0/24", "IPRange": "10.99.0.128/25", "Gateway": "10.99.0.254",
                                 "AuxiliaryAddresses": {"router": "10.99.0.2"}}]


def test_parse_create_minimal_request():
    spec = parse_create({"Name": "plain"})
    assert spec.subnet is None and spec.ipam_config == [] and spec.ipam_options is None and spec.bridge_name is None


@pytest.mark.parametrize(("body", "error", "message"), [
    ({"Name": ""}, InvalidParameter, "invalid name: "),
    ({"Name": "x", "Driver": "foo"}, NotFound, 'plugin "foo" not found'),
    ({"Name": "x", "Driver": "host"}, Forbidden, 'only one instance of "host" network is allowed'),
    ({"Name": "x", "Driver": "null"}, Forbidden, 'only one instance of "null" network is allowed'),
    ({"Name": "x", "Driver": "overlay"}, Unavailable, ERR_SWARM),
    ({"Name": "x", "IPAM": {"Driver": "foo"}}, NotFound, 'plugin "foo" not found'),
    ({"Name": "x", "EnableIPv6": True}, NotFound, ERR_NO_IPV6_POOL),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "garbage"}]}}, InvalidParameter,
     "Invalid subnet garbage : invalid CIDR address: garbage"),
    ({"Name": "x", "IPAM": {"Config": [{"Gateway": "10.6.0.1"}]}}, InvalidParameter,
     "Invalid subnet  : invalid CIDR address: "),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.99.0.0/24", "Gateway": "10.98.0.1"}]}}, InvalidParameter,
     "failed to allocate gateway (10.98.0.1): Requested address is out of range"),
    ({"Name": "x", "IPAM": {"Config": [{"Subnet": "10.5.0.0/24", "IPRange": "10.6.0.0/25"}]}}, InvalidParameter,
     "no matching subnet for range 10.6.0.0/25"),
    ({"Name": "x", "Options": {"com.docker.network.driver.mtu": "abc"}}, InvalidParameter, "invalid MTU number: abc"),
])
def test_parse_create_errors(body, error, message):
    with pytest.raises(error) as err:
        parse_create(body)
    assert err.value.message == message


# ---- records and views

def network(name: str = "web", endpoints: dict[str, EndpointRecord] | None = None, **kw) -> NetworkRecord:
    ipam = NetworkIPAM.create(N("172.19.0.0/16"), network_name=name, network_id="f" * 64)
    return NetworkRecord("f" * 64 if name == "web" else name * 8, name, kw.pop("driver", "bridge"),
                         kw.pop("created", "2026-11-29T20:46:29.958516941Z"), ipam, "br-ffffffffffff",
                         ipam_options={}, ipam_config=[{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}],
                         endpoints=endpoints or {}, **kw)


def endpoint(ip: str = "172.19.0.2", name: str = "refc1", cid: str = CID, **kw) -> EndpointRecord:
    return EndpointRecord("e" * 64, cid, name, I(f"{ip}/16"), "02:42:ac:13:00:02", "veth1234567", **kw)


def test_network_view_matches_dockerd_inspect():
    view = network_view(network(labels={"a": "b"}, endpoints={CID: endpoint()}))
    assert view == {
        "Name": "web", "Id": "f" * 64, "Created": "2026-11-29T20:46:29.958516941Z", "Scope": "local",
        "Driver": "bridge", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}]},
        "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {CID: {"Name": "refc1", "EndpointID": "e" * 64, "MacAddress": "02:42:ac:13:00:02",
                             "IPv4Address": "172.19.0.2/16", "IPv6Address": ""}},
        "Options": {}, "Labels": {"a": "b"},
    }
    assert network_view(network(endpoints={CID: endpoint()}), containers=False)["Containers"] == {}


def test_records_round_trip_through_json():
    net = network(endpoints={CID: endpoint(dns_names=["refc1", "web"], links={"db": "refc2"}, routes=False)})
    net.ipam.allocate()
    again = NetworkRecord.from_json(net.to_json())
    assert again.to_json() == net.to_json()
    assert again.endpoints[CID].links == {"db": "refc2"} and again.ipam.addresses() == [A("172.19.0.2")]


def test_endpoint_settings_and_legacy_fields():
    live = endpoint_settings({"IPAMConfig": {"IPv4Address": "172.19.0.2"}, "Aliases": ["foo", CID[:12]]}, "f" * 64,
                             endpoint(), "172.19.0.1")
    assert live == {
        "IPAMConfig": {"IPv4Address": "172.19.0.2"}, "Links": None, "Aliases": ["foo", CID[:12]],
        "NetworkID": "f" * 64, "EndpointID": "e" * 64, "Gateway": "172.19.0.1", "IPAddress": "172.19.0.2",
        "IPPrefixLen": 16, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": "02:42:ac:13:00:02", "DriverOpts": None,
    }
    user = network_settings({"web": live}, {"80/tcp": None}, "/proc/1/ns/net", "a" * 64)
    assert (user["IPAddress"], user["Gateway"], user["EndpointID"], user["Ports"]) == ("", "", "", {"80/tcp": None})
    default = network_settings({"zzz": endpoint_settings({}), "bridge": live})
    assert (default["IPAddress"], default["IPPrefixLen"], default["MacAddress"]) == ("172.19.0.2", 16,
                                                                                     "02:42:ac:13:00:02")
    assert list(default["Networks"]) == ["bridge", "zzz"]
    assert endpoint_settings({}) == {**live, "IPAMConfig": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
                                     "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}


# ---- filters

def nets() -> list[NetworkRecord]:
    return [network("bridge"), network("host", driver="host"), network("none", driver="null"),
            network("web", labels={"a": "b"}, endpoints={CID: endpoint()}),
            network("refnet2", created="2020-01-01T00:00:00Z"), network("db", labels={"a": "c", "keep": ""})]


@pytest.mark.parametrize(("filters", "names"), [
    ({}, ["bridge", "db", "host", "none", "refnet2", "web"]),
    ({"type": ["builtin"]}, ["bridge", "host", "none"]),
    ({"type": ["custom"]}, ["db", "refnet2", "web"]),
    ({"driver": ["null", "host"]}, ["host", "none"]),
    ({"name": ["ref"]}, ["refnet2"]),
    ({"name": ["^ref.*2$", "web"]}, ["refnet2", "web"]),
    ({"id": ["ffff"]}, ["web"]),
    ({"label": ["a"]}, ["db", "web"]),
    ({"label": ["a=b"]}, ["web"]),
    ({"scope": ["swarm"]}, []),
    ({"scope": ["local"], "type": ["custom"], "label": ["a"]}, ["db", "web"]),
    ({"dangling": ["true"]}, ["db", "refnet2"]),
    ({"dangling": ["0"]}, ["bridge", "host", "none", "web"]),
])
def test_filter_networks(filters, names):
    assert [net.name for net in filter_networks(nets(), filters)] == names


@pytest.mark.parametrize(("filters", "message"), [
    ({"foo": ["x"]}, "Invalid filter 'foo'"),
    ({"type": ["x"]}, "invalid filter: 'type'='x'"),
    ({"dangling": ["maybe"]}, "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"),
])
def test_filter_networks_errors(filters, message):
    with pytest.raises(InvalidParameter) as err:
        filter_networks(nets(), filters)
    assert err.value.message == message


@pytest.mark.parametrize(("filters", "names"), [
    ({}, ["refnet2", "db"]),
    ({"label": ["a"]}, ["db"]),
    ({"label!": ["keep"]}, ["refnet2"]),
    ({"until": ["2021-01-01T00:00:00Z"]}, ["refnet2"]),
])
def test_prune_candidates(filters, names):
    assert [net.name for net in prune_candidates(nets(), filters)] == names


def test_prune_rejects_unknown_filters():
    with pytest.raises(InvalidParameter, match="Invalid filter 'dangling'"):
        prune_candidates(nets(), {"dangling": ["true"]})


# ---- container settings

def container(**host_config) -> Container:
    return Container(CID, "refc1", "", "busybox", "", {"Hostname": "box"}, host_config)


@pytest.mark.parametrize(("host_config", "mode", "shared"), [
    ({}, "bridge", None), ({"NetworkMode": "default"}, "bridge", None), ({"NetworkMode": "web"}, "web", None),
    ({"NetworkMode": "container:db"}, "container:db", "db"), ({"NetworkMode": "host"}, "host", None),
])
def test_network_mode(host_config, mode, shared):
    c = container(**host_config)
    assert (network_mode(c), shared_with(c)) == (mode, shared)


@pytest.mark.parametrize(("spec", "parsed"), [("db:alias", ("db", "alias")), ("db", ("db", "db")),
                                              ("/db:/web/alias", ("db", "alias"))])
def test_parse_link(spec, parsed):
    assert parse_link(spec) == parsed


def test_parse_mac():
    assert parse_mac("02:42:AC:11:00:09") == "02:42:ac:11:00:09"
    with pytest.raises(InvalidParameter) as err:
        parse_mac("zz")
    assert err.value.message == "address zz: invalid MAC address"


def test_dns_names_are_unique_and_keep_order():
    assert dns_names(container(), {"Aliases": ["web", "REFC1", CID[:12]]}) == ["refc1", "web", CID[:12], "box"]


# ---- DNS name table

def test_network_names_answer_names_aliases_links_and_ptr():
    one = endpoint("172.19.0.2", "refc1", "1" * 64, dns_names=["refc1", "web", "111111111111"], links={"db": "refc2"})
    two = endpoint("172.19.0.3", "refc2", "2" * 64, dns_names=["refc2", "shared"])
    three = endpoint("172.19.0.4", "refc3", "3" * 64, dns_names=["refc3", "shared"])
    net = network(endpoints={e.container_id: e for e in (one, two, three)})
    names = NetworkNames(lambda: net)
    client = A("172.19.0.2")
    assert names.lookup("refc2", client) == [A("172.19.0.3")]
    assert names.lookup("web", A("172.19.0.3")) == [A("172.19.0.2")]
    assert names.lookup("refc2.web", client) == [A("172.19.0.3")]
    assert names.lookup("111111111111", client) == [A("172.19.0.2")]
    assert names.lookup("shared", client) == [A("172.19.0.3"), A("172.19.0.4")]
    assert names.lookup("db", client) == [A("172.19.0.3")]
    assert names.lookup("db", A("172.19.0.3")) is None
    assert names.lookup("nothing", client) is None
    assert names.reverse(A("172.19.0.4"), client) == "refc3.web"
    assert names.reverse(A("172.19.0.9"), client) is None
    assert NetworkNames(lambda: None).lookup("refc2", client) is None


def test_network_names_answer_only_containers_on_the_network_and_the_host():
    """A container elsewhere that reaches the gateway through the host must not learn the names
    (docker's DNS lives in each container: other networks cannot ask it at all)."""
    net = network(endpoints={CID: endpoint("172.19.0.2", "refc1", CID, dns_names=["refc1"])})
    names = NetworkNames(lambda: net)
    assert names.lookup("refc1", A("172.17.0.5")) is None
    assert names.reverse(A("172.19.0.2"), A("172.17.0.5")) is None
    assert names.lookup("refc1", A("172.19.0.1")) == [A("172.19.0.2")]  # the host itself, on the gateway


def test_network_names_search_every_user_network_of_the_asking_container():
    """A container on two user networks resolves the names of both, whichever DNS it asks;
    ``NAME.NETWORK`` picks the network; the default bridge has no names."""
    client, web, db = "c" * 64, "1" * 64, "2" * 64
    front = network("front", endpoints={client: endpoint("172.19.0.2", "cli", client, dns_names=["cli"]),
                                        web: endpoint("172.19.0.3", "web", web, dns_names=["web", "shared"])})
    back = NetworkRecord("b" * 64, "back", "bridge", "", None, "br-bbbbbbbbbbbb", endpoints={
        client: endpoint("10.9.0.2", "cli", client, dns_names=["cli"]),
        db: endpoint("10.9.0.3", "db", db, dns_names=["db", "shared"])})
    default = NetworkRecord("d" * 64, "bridge", "bridge", "", None, "bt0", endpoints={
        client: endpoint("172.17.0.2", "cli", client), "3" * 64: endpoint("172.17.0.3", "lone", "3" * 64)})
    peers = {client: [front, back, default], web: [front], db: [back]}
    names = NetworkNames(lambda: front, lambda cid: peers.get(cid, []))
    me = A("172.19.0.2")
    assert names.lookup("db", me) == [A("10.9.0.3")]
    assert names.lookup("web", me) == [A("172.19.0.3")]
    assert names.lookup("shared", me) == [A("172.19.0.3")]  # the asked network first
    assert names.lookup("cli.back", me) == [A("10.9.0.2")]
    assert names.lookup("lone", me) is None
    assert names.reverse(A("10.9.0.3"), me) == "db.back"
    assert names.lookup("db", A("172.19.0.3")) is None  # web is not on back


def mode_container(config: dict, **host_config) -> Container:
    return Container(CID, "refc1", "", "busybox", "", {"Hostname": CID[:12], **config}, host_config)


@pytest.mark.parametrize(("config", "host_config", "publishes", "message"), [
    ({}, {"NetworkMode": "container:"}, False, "Invalid network mode: invalid container format container:<name|id>"),
    ({"Hostname": "web"}, {"NetworkMode": "container:db"}, False, "conflicting options: hostname and the network mode"),
    ({}, {"NetworkMode": "container:db", "Links": ["a:b"]}, False,
     "conflicting options: container type network can't be used with links. This would result in undefined behavior"),
    ({}, {"NetworkMode": "container:db", "Dns": ["10.0.0.1"]}, False, "conflicting options: dns and the network mode"),
    ({}, {"NetworkMode": "container:db", "ExtraHosts": ["a:10.0.0.1"]}, False,
     "conflicting options: custom host-to-IP mapping and the network mode"),
    ({"MacAddress": "02:42:ac:11:00:09"}, {"NetworkMode": "container:db"}, False,
     "conflicting options: mac-address and the network mode"),
    ({"MacAddress": "02:42:ac:11:00:09"}, {"NetworkMode": "host"}, False,
     "conflicting options: mac-address and the network mode"),
    ({}, {"NetworkMode": "container:db"}, True, "conflicting options: port publishing and the container type network mode"),
    ({"Hostname": "web"}, {"NetworkMode": "container:db", "Dns": ["10.0.0.1"]}, True,
     "conflicting options: hostname and the network mode"),  # dockerd's order: the hostname first
])
def test_network_mode_conflicts_are_dockerds(config, host_config, publishes, message):
    with pytest.raises(InvalidParameter) as err:
        check_mode_conflicts(mode_container(config, **host_config), publishes)
    assert err.value.message == message


@pytest.mark.parametrize(("config", "host_config"), [
    ({}, {"NetworkMode": "container:db"}),
    ({"Hostname": "web", "MacAddress": "02:42:ac:11:00:09"}, {"NetworkMode": "web", "Dns": ["10.0.0.1"]}),
    ({"Hostname": "vm"}, {"NetworkMode": "host", "Dns": ["10.0.0.1"], "ExtraHosts": ["a:10.0.0.1"]}),
])
def test_network_mode_without_conflicts(config, host_config):
    check_mode_conflicts(mode_container(config, **host_config), publishes=False)


def test_host_mode_warns_that_published_ports_are_discarded():
    host = mode_container({}, NetworkMode="host", PortBindings={"80/tcp": [{"HostPort": "8080"}]})
    assert mode_warnings(host) == ["Published ports are discarded when using host network mode"]
    assert mode_warnings(mode_container({}, PortBindings={"80/tcp": [{"HostPort": "8080"}]})) == []
