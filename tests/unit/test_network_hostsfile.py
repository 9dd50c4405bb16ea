"""/etc/hosts and resolv.conf rendering."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.network.hostsfile import (
    container_resolv_conf,
    link_entry,
    parse_extra_host,
    parse_resolv_conf,
    render_hosts,
)
from berth.network.model import HostEntry

BASE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def test_hosts_like_docker_run():
    assert render_hosts("0ab1c2d3e4f5", ["172.17.0.2"]) == BASE + "172.17.0.2\t0ab1c2d3e4f5\n"


def test_hosts_with_extra_links_and_domain():
    text = render_hosts(
        "web",
        ["172.18.0.3"],
        domainname="example.org",
        extra_hosts=[parse_extra_host("db.local:10.0.0.7"), parse_extra_host("v6:::1")],
        links=[link_entry("172.17.0.5", "cache", "5b1a2c3d4e5f", "redis")],
    )
    assert text == BASE + (
        "10.0.0.7\tdb.local\n"
        "::1\tv6\n"
        "172.17.0.5\tcache 5b1a2c3d4e5f redis\n"
        "172.18.0.3\tweb.example.org\tweb\n"
    )


def test_hosts_network_none_and_no_ipv6():
    assert render_hosts("box", [], ipv6=False) == "127.0.0.1\tlocalhost\n"


def test_link_alias_equal_to_name_is_not_repeated():
    assert link_entry("172.17.0.5", "db", "abc", "db") == HostEntry("172.17.0.5", ("db", "abc"))


@pytest.mark.parametrize(
    ("spec", "entry"),
    [
        ("host:1.2.3.4", HostEntry("1.2.3.4", ("host",))),
        ("host=1.2.3.4", HostEntry("1.2.3.4", ("host",))),
        ("h6:::1", HostEntry("::1", ("h6",))),
        ("h6=[2001:db8::1]", HostEntry("2001:db8::1", ("h6",))),
        ("gw:host-gateway", HostEntry("host-gateway", ("gw",))),
    ],
)
def test_parse_extra_host(spec, entry):
    assert parse_extra_host(spec) == entry


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nocolon", 'bad format for add-host: "nocolon"'), (":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
     ("h:1.2.3", 'invalid IP address in add-host: "1.2.3"')],
)
def test_parse_extra_host_errors(spec, message):
    with pytest.raises(InvalidParameter) as err:
        parse_extra_host(spec)
    assert err.value.message == message


HOST_RESOLV = """# generated
nameserver 127.0.0.53
nameserver 10.255.255.53
nameserver 2001:db8::53
search corp.example lab.example
options edns0 timeout:2
"""


def test_parse_resolv_conf():
    conf = parse_resolv_conf(HOST_RESOLV + "sortlist 10.0.0.0\n")
    assert conf.nameservers == ("127.0.0.53", "10.255.255.53", "2001:db8::53")
    assert conf.search == ("corp.example", "lab.example")
    assert conf.options == ("edns0", "timeout:2")
    assert conf.other == ("sortlist 10.0.0.0",)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (  # user network: our DNS server on the gateway, host search/options kept, ndots:0 added
            {"gateway": "172.18.0.1"},
            "search corp.example lab.example\nnameserver 172.18.0.1\noptions edns0 timeout:2 ndots:0\n",
        ),
        (  # default bridge: loopback and (without IPv6) IPv6 servers dropped
            {},
            "search corp.example lab.example\nnameserver 10.255.255.53\noptions edns0 timeout:2\n",
        ),
        ({"ipv6": True}, "search corp.example lab.example\nnameserver 10.255.255.53\nnameserver 2001:db8::53\n"
                         "options edns0 timeout:2\n"),
        (
            {"dns": ["1.1.1.1"], "dns_search": ["."], "dns_options": ["ndots:2"]},
            "nameserver 1.1.1.1\noptions ndots:2\n",
        ),
        (
            {"gateway": "10.1.0.1", "dns": ["1.1.1.1"], "dns_search": ["a.b"], "dns_options": ["ndots:3"]},
            "search a.b\nnameserver 10.1.0.1\noptions ndots:3\n",
        ),
    ],
)
def test_container_resolv_conf(kwargs, expected):
    assert container_resolv_conf(parse_resolv_conf(HOST_RESOLV), **kwargs).render() == expected


def test_default_bridge_falls_back_to_public_resolvers():
    conf = container_resolv_conf(parse_resolv_conf("nameserver 127.0.0.53\nnameserver ::1\n"))
    assert conf.render() == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
