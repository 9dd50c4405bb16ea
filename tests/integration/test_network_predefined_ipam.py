"""``network inspect`` of the predefined networks: dockerd 20.10 shows the default bridge's
subnet and gateway with null IPAM options, and an empty config for ``none`` and ``host``."""

from __future__ import annotations

import ipaddress
import json


def ipam(client, name: str) -> dict:
    return json.loads(client("network", "inspect", "-f", "{{json .IPAM}}", name).stdout)


def test_predefined_networks_ipam_as_dockerd(bdaemon, dockerd):
    for name in ("none", "host"):
        assert ipam(bdaemon.cli, name) == ipam(dockerd.docker, name) == {
            "Driver": "default", "Options": None, "Config": []}
    for client in (bdaemon.cli, dockerd.docker):
        view = ipam(client, "bridge")
        assert (view["Driver"], view["Options"], len(view["Config"])) == ("default", None, 1)
        subnet = ipaddress.ip_network(view["Config"][0]["Subnet"])
        assert view["Config"][0] == {"Subnet": str(subnet), "Gateway": str(subnet.network_address + 1)}
