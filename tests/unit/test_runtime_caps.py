"""Capability names and masks, and cgroup v1 device rule lines."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.runtime import caps
from berth.runtime.cgroups import device_rule


@pytest.mark.parametrize("name, canonical", [
    ("chown", "CAP_CHOWN"), ("CAP_NET_ADMIN", "CAP_NET_ADMIN"), ("cap_sys_admin", "CAP_SYS_ADMIN"),
    (" Net_Raw ", "CAP_NET_RAW"), ("all", "ALL"), ("ALL", "ALL"), ("checkpoint_restore", "CAP_CHECKPOINT_RESTORE"),
])
def test_normalize(name: str, canonical: str) -> None:
    assert caps.normalize(name) == canonical


@pytest.mark.parametrize("name", ["foo", "CAP_", "CAP_ALL", ""])
def test_normalize_unknown(name: str) -> None:
    with pytest.raises(InvalidParameter, match="unknown capability"):
        caps.normalize(name)


def test_numbers_and_masks() -> None:
    assert caps.CAP_NUMBERS["CAP_CHOWN"] == 0
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert caps.to_mask(caps.DEFAULT_CAPABILITIES) == 0xA80425FB  # what /proc/<pid>/status shows under docker
    assert caps.from_mask(0xA80425FB) == sorted(caps.DEFAULT_CAPABILITIES, key=caps.CAP_NUMBERS.get)
    assert caps.to_mask(caps.CAPABILITIES) == (1 << 41) - 1


@pytest.mark.parametrize("rule, line", [
    ({"allow": False, "access": "rwm"}, "a"),
    ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}, "c 1:3 rwm"),
    ({"allow": True, "type": "c", "major": 136, "minor": -1, "access": "rw"}, "c 136:* rw"),
    ({"allow": True, "type": "b", "access": "m"}, "b *:* m"),
])
def test_device_rule(rule: dict, line: str) -> None:
    assert device_rule(rule) == line
