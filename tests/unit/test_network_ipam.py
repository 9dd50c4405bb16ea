"""IPAM: default pools, overlap avoidance, --ip, exhaustion, release/reuse order, MACs, persistence."""

from __future__ import annotations

import json
from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N

import pytest

from berth.errors import Forbidden, InvalidParameter, NotFound, Unavailable
from berth.network.ipam import (
    ERR_NO_DEFAULT_POOL,
    ERR_POOL_OVERLAP,
    NetworkIPAM,
    check_pool_overlap,
    choose_subnet,
    mac_for_ip,
    parse_ipv4_address,
    parse_ipv4_network,
)
from berth.network.model import AddressPool, bridge_name_for, new_veth_name, parse_address_pool

ALL_172 = [N(f"172.{i}.0.0/16") for i in range(17, 32)]


@pytest.mark.parametrize(
    ("ip", "mac"),
    [
        ("172.17.0.2", "02:42:ac:11:00:02"),
        ("10.0.0.1", "02:42:0a:00:00:01"),
        ("192.168.255.254", "02:42:c0:a8:ff:fe"),
        (A("172.18.1.3"), "02:42:ac:12:01:03"),
    ],
)
def test_mac_for_ip(ip, mac):
    assert mac_for_ip(ip) == mac


@pytest.mark.parametrize(
    ("routes", "in_use", "expected"),
    [
        ([], [], N("172.17.0.0/16")),
        ([N("0.0.0.0/0")], [], N("172.17.0.0/16")),  # default routes never conflict
        ([], [N("172.17.0.0/16")], N("172.18.0.0/16")),
        ([N("172.18.5.0/24")], [N("172.17.0.0/16")], N("172.19.0.0/16")),
        ([N("172.16.0.0/12")], [], N("192.168.0.0/20")),
        ([], ALL_172, N("192.168.0.0/20")),
        ([N("192.168.0.0/24")], ALL_172, N("192.168.16.0/20")),
        ([N("172.20.0.1/32")], [N("172.17.0.0/16"), N("172.18.0.0/16"), N("172.19.0.0/16")], N("172.21.0.0/16")),
    ],
)
def test_choose_subnet_default_pools(routes, in_use, expected):
    assert choose_subnet(routes, in_use) == expected


def test_choose_subnet_custom_pool():
    pools = [parse_address_pool("base=10.10.0.0/16,size=24")]
    assert choose_subnet([], [], pools) == N("10.10.0.0/24")
    assert choose_subnet([N("10.10.0.0/23")], [N("10.10.2.0/24")], pools) == N("10.10.3.0/24")


def test_choose_subnet_exhausted():
    with pytest.raises(NotFound) as err:
        choose_subnet([N("172.16.0.0/12"), N("192.168.0.0/16")], [])
    assert err.value.message == ERR_NO_DEFAULT_POOL


@pytest.mark.parametrize(
    ("spec", "pool"),
    [
        ("base=10.10.0.0/16,size=24", AddressPool(N("10.10.0.0/16"), 24)),
        ("size=20, base=192.168.0.0/16", AddressPool(N("192.168.0.0/16"), 20)),
    ],
)
def test_parse_address_pool(spec, pool):
    assert parse_address_pool(spec) == pool


@pytest.mark.parametrize(
    "spec",
    ["base=10.10.0.0/16", "base=10.10.0.0/16,size=8", "base=nope,size=24", "base=10.0.0.0/8,size=24,x=1",
     "base=fd00::/8,size=64", "size=24"],
)
def test_parse_address_pool_rejects(spec):
    with pytest.raises(InvalidParameter):
        parse_address_pool(spec)


def test_default_pool_subnet_counts():
    assert len(AddressPool(N("192.168.0.0/16"), 20).subnets()) == 16
    assert AddressPool(N("172.17.0.0/16"), 16).subnets() == [N("172.17.0.0/16")]


def test_pool_overlap():
    check_pool_overlap(N("10.1.0.0/24"), [N("10.1.1.0/24")])
    with pytest.raises(Forbidden) as err:
        check_pool_overlap(N("10.1.0.0/16"), [N("10.1.1.0/24")])
    assert err.value.message == ERR_POOL_OVERLAP


@pytest.mark.parametrize(
    ("text", "ok"),
    [("172.20.0.0/16", N("172.20.0.0/16")), ("172.20.1.5/16", N("172.20.0.0/16")), ("172.20.0.0", None),
     ("fd00::/64", None), ("bogus/8", None)],
)
def test_parse_ipv4_network(text, ok):
    if ok is None:
        with pytest.raises(InvalidParameter, match=f"invalid CIDR address: {text}"):
            parse_ipv4_network(text)
    else:
        assert parse_ipv4_network(text) == ok


def test_parse_ipv4_address():
    assert parse_ipv4_address("10.0.0.9") == A("10.0.0.9")
    with pytest.raises(InvalidParameter):
        parse_ipv4_address("::1")


def test_create_defaults_and_validation():
    ipam = NetworkIPAM.create(N("172.18.0.0/16"))
    assert ipam.gateway == A("172.18.0.1")
    assert NetworkIPAM.create(N("10.0.0.0/24"), gateway=A("10.0.0.254")).gateway == A("10.0.0.254")
    cases = [
        ({"gateway": A("10.1.0.1")}, "no matching subnet for gateway 10.1.0.1"),
        ({"ip_range": N("10.1.0.0/24")}, "no matching subnet for range 10.1.0.0/24"),
        ({"aux_addresses": {"r": A("10.9.9.9")}}, "no matching subnet for aux-address r=10.9.9.9"),
        ({"gateway": A("10.0.0.0")}, "invalid gateway 10.0.0.0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidParameter) as err:
            NetworkIPAM.create(N("10.0.0.0/24"), **kwargs)
        assert err.value.message.startswith(message)
    with pytest.raises(InvalidParameter):
        NetworkIPAM.create(N("10.0.0.0/31"))


def test_sequential_allocation_skips_reserved_and_reuses_released_last():
    ipam = NetworkIPAM.create(N("10.0.0.0/29"), aux_addresses={"router": A("10.0.0.4")}, network_name="n",
                              network_id="abc")
    got = [ipam.allocate() for _ in range(4)]
    assert got == [A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.5"), A("10.0.0.6")]
    ipam.release(A("10.0.0.3"))
    assert ipam.allocate() == A("10.0.0.3")  # only free one, found after wrapping
    with pytest.raises(Unavailable) as err:
        ipam.allocate()
    assert err.value.message == "no available IPv4 addresses on this network's address pools: n (abc)"


def test_released_address_comes_back_after_the_others():
    ipam = NetworkIPAM.create(N("172.18.0.0/16"))
    first, second, _ = ipam.allocate(), ipam.allocate(), ipam.allocate()
    assert (first, second) == (A("172.18.0.2"), A("172.18.0.3"))
    ipam.release(second)
    ipam.release(second)  # idempotent
    assert ipam.allocate() == A("172.18.0.5")
    assert not ipam.is_allocated(second)


def test_ip_range_allocation_like_docker():
    # docker hands out the range's first address too: only the subnet's network and
    # broadcast addresses are reserved, not the range's.
    ipam = NetworkIPAM.create(N("10.0.0.0/16"), ip_range=N("10.0.1.0/30"))
    assert [ipam.allocate() for _ in range(4)] == [A("10.0.1.0"), A("10.0.1.1"), A("10.0.1.2"), A("10.0.1.3")]
    with pytest.raises(Unavailable):
        ipam.allocate()
    assert ipam.allocate(A("10.0.200.7")) == A("10.0.200.7")  # --ip may lie outside the range


@pytest.mark.parametrize(
    ("requested", "error", "message"),
    [
        ("10.0.0.1", Forbidden, "Address already in use"),  # gateway
        ("10.0.0.0", Forbidden, "Address already in use"),  # network address
        ("10.0.0.255", Forbidden, "Address already in use"),  # broadcast
        ("10.0.0.2", Forbidden, "Address already in use"),  # taken below
        ("10.0.1.9", InvalidParameter, "no configured subnet or ip-range contain the IP address 10.0.1.9"),
    ],
)
def test_requested_address_errors(requested, error, message):
    ipam = NetworkIPAM.create(N("10.0.0.0/24"))
    ipam.allocate()
    with pytest.raises(error) as err:
        ipam.allocate(A(requested))
    assert err.value.message == message


def test_requested_address_does_not_move_cursor():
    ipam = NetworkIPAM.create(N("10.0.0.0/24"))
    assert ipam.allocate(A("10.0.0.50")) == A("10.0.0.50")
    assert ipam.allocate() == A("10.0.0.2")
    assert ipam.addresses() == [A("10.0.0.2"), A("10.0.0.50")]


def test_release_outside_subnet():
    with pytest.raises(InvalidParameter):
        NetworkIPAM.create(N("10.0.0.0/24")).release(A("10.0.1.1"))


def test_json_round_trip_continues_identically():
    ipam = NetworkIPAM.create(N("10.5.0.0/24"), ip_range=N("10.5.0.128/25"), gateway=A("10.5.0.1"),
                              aux_addresses={"b": A("10.5.0.130")}, network_name="web", network_id="f" * 64)
    for _ in range(3):
        ipam.allocate()
    ipam.release(A("10.5.0.129"))
    saved = json.loads(json.dumps(ipam.to_json()))
    assert saved["Allocated"] == ["10.5.0.128", "10.5.0.131"]
    restored = NetworkIPAM.from_json(saved)
    assert restored == ipam
    assert [restored.allocate() for _ in range(2)] == [ipam.allocate() for _ in range(2)]


@pytest.mark.parametrize("data", [{}, {"Subnet": "x", "Gateway": "10.0.0.1"}, {"Subnet": "10.0.0.0/24"}])
def test_from_json_malformed(data):
    with pytest.raises(InvalidParameter):
        NetworkIPAM.from_json(data)


def test_names():
    assert bridge_name_for("0123456789abcdef" * 4) == "br-0123456789ab"
    with pytest.raises(InvalidParameter):
        bridge_name_for("short")
    name = new_veth_name()
    assert len(name) == 11 and name.startswith("veth") and int(name[4:], 16) >= 0
