"""``POST /containers/create`` bodies with fields of the wrong JSON kind: dockerd 20.10's messages
(each observed with curl against dockerd 20.10.24; status 500 there and here)."""

from __future__ import annotations

import pytest

from berth.api.gotypes import check_create_body
from berth.errors import SystemError_

WRAPPER = "json: cannot unmarshal {} into Go struct field ContainerConfigWrapper.{} of type {}"
HOST = "json: cannot unmarshal {} into Go struct field HostConfig.HostConfig.{} of type {}"

REFUSED = [
    ({"Image": 123}, WRAPPER.format("number", "Image", "string")),
    ({"Image": "busybox", "HostConfig": {"Memory": "lots"}}, HOST.format("string", "Memory", "int64")),
    ({"Image": "busybox", "Cmd": 5}, WRAPPER.format("number", "Cmd", "string")),
    ({"Image": "busybox", "Env": "A=1"}, WRAPPER.format("string", "Env", "[]string")),
    ({"Image": "busybox", "HostConfig": {"Binds": "x"}}, HOST.format("string", "Binds", "[]string")),
    ({"Image": "busybox", "Tty": "yes"}, WRAPPER.format("string", "Tty", "bool")),
    ([1], "json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper"),
    ({"Image": "busybox", "ExposedPorts": [1]}, WRAPPER.format("array", "ExposedPorts", "nat.PortSet")),
    # the same rules on fields not tried against dockerd
    ({"Env": ["A=1", 2]}, WRAPPER.format("number", "Env", "string")),
    ({"Cmd": ["sh", 1]}, WRAPPER.format("array", "Cmd", "string")),
    ({"HostConfig": {"Memory": 1.5}}, HOST.format("number 1.5", "Memory", "int64")),
    ({"HostConfig": {"BlkioWeight": 70000}}, HOST.format("number 70000", "BlkioWeight", "uint16")),
    ({"HostConfig": {"Privileged": 1}}, HOST.format("number", "Privileged", "bool")),
    ({"Labels": ["a"]}, WRAPPER.format("array", "Labels", "map[string]string")),
]


@pytest.mark.parametrize("body, message", REFUSED)
def test_wrong_kinds_get_dockers_message(body, message):
    with pytest.raises(SystemError_) as info:
        check_create_body(body)
    assert info.value.message == message


@pytest.mark.parametrize("body", [
    {}, {"Image": "busybox", "Cmd": "sh -c true", "Entrypoint": ["a", "b"], "Env": None, "Tty": True},
    {"HostConfig": {"Memory": 6291456, "Binds": ["/a:/b"], "CapAdd": "NET_ADMIN", "MemorySwappiness": None,
                    "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}},
    {"Unknown": 1, "HostConfig": {"Unknown": "x"}},  # Go ignores fields it does not know
    {"HostConfig": None},
])
def test_right_kinds_pass(body):
    check_create_body(body)
