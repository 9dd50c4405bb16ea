"""``docker update`` semantics (``merge_update``) and create-time defaults, checked against what
dockerd 20.10 answers for the same requests (values observed with the docker CLI against dockerd)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.containers.create import merge_update
from berth.errors import Conflict, InvalidParameter

MiB = 1024 * 1024
CID = "c" * 64
# what `docker run -m 32m` records: memory+swap defaults to twice the memory limit
LIMITED = {"Memory": 32 * MiB, "MemorySwap": 64 * MiB, "NanoCpus": 0, "PidsLimit": None,
           "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False}
# the body the docker CLI sends: every resource present, 0 for the flags not given
ZEROS: dict[str, Any] = {"CpuShares": 0, "Memory": 0, "MemorySwap": 0, "MemoryReservation": 0, "NanoCpus": 0,
                         "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "CpusetMems": "", "BlkioWeight": 0,
                         "KernelMemory": 0, "PidsLimit": None, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}


def body(**kw: Any) -> dict[str, Any]:
    return {**ZEROS, **kw}


@pytest.mark.parametrize("hc, request_body, changed", [
    (LIMITED, body(), {}),
    (LIMITED, body(Memory=64 * MiB), {"Memory": 64 * MiB}),  # equal to memory+swap: allowed
    (LIMITED, body(Memory=16 * MiB), {"Memory": 16 * MiB}),
    (LIMITED, body(Memory=128 * MiB, MemorySwap=256 * MiB), {"Memory": 128 * MiB, "MemorySwap": 256 * MiB}),
    (LIMITED, body(MemorySwap=256 * MiB), {"MemorySwap": 256 * MiB}),  # swap alone is fine in an update
    (LIMITED, body(MemorySwap=-1), {"MemorySwap": -1}),
    (LIMITED, body(MemoryReservation=100 * MiB), {"MemoryReservation": 100 * MiB}),  # not checked against the old limit
    (LIMITED, body(NanoCpus=1_500_000_000, PidsLimit=30), {"NanoCpus": 1_500_000_000, "PidsLimit": 30}),
    (LIMITED, body(PidsLimit=0), {"PidsLimit": 0}),
    (LIMITED, body(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3}),
     {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}),
])
def test_merge_update(hc: dict[str, Any], request_body: dict[str, Any], changed: dict[str, Any]) -> None:
    assert merge_update(hc, request_body, CID) == {**hc, **changed}


SWAP_RULE = (f"Cannot update container {CID}: Memory limit should be smaller than already set memoryswap limit, "
             "update the memoryswap at the same time")


@pytest.mark.parametrize("hc, request_body, error, message", [
    (LIMITED, body(Memory=4 * MiB), InvalidParameter, "Minimum memory limit allowed is 6MB"),
    (LIMITED, body(Memory=40 * MiB, MemorySwap=20 * MiB), InvalidParameter,
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    (LIMITED, body(NanoCpus=500 * 1_000_000_000), InvalidParameter, "Range of CPUs is from 0.01 to"),
    (LIMITED, body(Memory=200 * MiB), Conflict, SWAP_RULE),
    ({**LIMITED, "MemorySwap": -1}, body(Memory=200 * MiB), Conflict, SWAP_RULE),  # dockerd's rule, -1 included
    ({**LIMITED, "Memory": 0, "MemorySwap": 0}, body(Memory=64 * MiB), Conflict, SWAP_RULE),
    ({**LIMITED, "AutoRemove": True}, body(RestartPolicy={"Name": "always"}), InvalidParameter,
     "Restart policy cannot be updated because AutoRemove is enabled for the container"),
    (LIMITED, body(RestartPolicy={"Name": "sometimes"}), InvalidParameter, "invalid restart policy 'sometimes'"),
])
def test_merge_update_errors(hc: dict[str, Any], request_body: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as info:
        merge_update(hc, request_body, CID)
    assert info.value.message.startswith(message)


@pytest.mark.parametrize("host_config, swap", [
    ({"Memory": 32 * MiB}, 64 * MiB),  # dockerd records twice the memory limit
    ({"Memory": 32 * MiB, "MemorySwap": 48 * MiB}, 48 * MiB),
    ({"Memory": 32 * MiB, "MemorySwap": -1}, -1),
    ({}, 0),
])
def test_create_records_the_memory_swap_default(host_config: dict[str, Any], swap: int) -> None:
    from berth.containers.create import build_container
    c = build_container({"Cmd": ["true"], "HostConfig": host_config}, "/n", "busybox", "sha256:" + "a" * 64, {})
    assert c.host_config["MemorySwap"] == swap
