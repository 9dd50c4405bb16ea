"""Create-time refusals of ``build_container``: nothing is created for settings dockerd 20.10 refuses at
``POST /containers/create`` (messages as its CLI prints them after "Error response from daemon: ")."""

from __future__ import annotations

from typing import Any

import pytest

from berth.containers.create import build_container
from berth.errors import InvalidParameter
from berth.runtime.spec import MASKED_PATHS, READONLY_PATHS


@pytest.mark.parametrize("host_config, message", [
    ({"CapAdd": ["BOGUS"]}, 'invalid CapAdd: unknown capability: "CAP_BOGUS"'),
    ({"CapDrop": ["chown", "cap_nope"]}, 'invalid CapDrop: unknown capability: "CAP_NOPE"'),
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Runtime": "crun"}, "Unknown runtime specified crun"),
])
def test_refused_at_create(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        build_container({"Cmd": ["true"], "HostConfig": host_config}, "/n", "busybox", "sha256:" + "a" * 64, {})
    assert info.value.message == message


@pytest.mark.parametrize("host_config", [
    {"CapAdd": ["ALL"], "CapDrop": ["net_raw", "CAP_MKNOD"]},
    {"CapAdd": ["sys_admin"], "CapDrop": ["all"]},
])
def test_capability_spellings_accepted(host_config: dict[str, Any]) -> None:
    c = build_container({"Cmd": ["true"], "HostConfig": host_config}, "/n", "busybox", "sha256:" + "a" * 64, {})
    assert c.host_config["CapAdd"] == host_config["CapAdd"]


IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["sh"]}


@pytest.mark.parametrize("body, path, args, entrypoint", [
    ({"Entrypoint": [""], "Cmd": ["echo", "hi"]}, "echo", ["hi"], None),  # `--entrypoint "" IMAGE echo hi`
    ({"Cmd": ["x"]}, "/entry", ["x"], ["/entry"]),
    ({}, "/entry", ["sh"], ["/entry"]),
])
def test_entrypoint_and_command(body: dict[str, Any], path: str, args: list[str], entrypoint: Any) -> None:
    c = build_container(body, "/n", "img", "sha256:" + "a" * 64, IMAGE)
    assert (c.path, c.args, c.config["Entrypoint"]) == (path, args, entrypoint)


def test_empty_entrypoint_without_a_command_is_refused() -> None:
    """`docker run --entrypoint "" IMAGE`: the image's Cmd is not used either, so there is nothing to run."""
    with pytest.raises(InvalidParameter) as info:
        build_container({"Entrypoint": [""]}, "/n", "img", "sha256:" + "a" * 64, IMAGE)
    assert info.value.message == "No command specified"


@pytest.mark.parametrize("host_config, masked, readonly", [
    ({}, list(MASKED_PATHS), list(READONLY_PATHS)),  # recorded at create, as dockerd shows them in inspect
    ({"MaskedPaths": [], "ReadonlyPaths": []}, [], []),  # --security-opt systempaths=unconfined
    ({"Privileged": True}, None, None),
])
def test_system_paths_recorded(host_config: dict[str, Any], masked: Any, readonly: Any) -> None:
    c = build_container({"Cmd": ["true"], "HostConfig": host_config}, "/n", "busybox", "sha256:" + "a" * 64, {})
    assert (c.host_config["MaskedPaths"], c.host_config["ReadonlyPaths"]) == (masked, readonly)
