"""``--device`` and ``--device-cgroup-rule`` as OCI devices and cgroup rules (``berth.runtime.devices``), and
how the spec generator combines them (a device with its own rule gets exactly that access)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.errors import InvalidParameter, SystemError_
from berth.runtime.devices import devices_from_path, parse_cgroup_rule
from berth.runtime.spec import SpecOptions, generate_spec

NULL = os.stat("/dev/null")


def test_one_device_under_another_name() -> None:
    devices, rules = devices_from_path("/dev/null", "/dev/mynull", "r")
    assert devices == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                        "fileMode": NULL.st_mode & 0o7777, "uid": NULL.st_uid, "gid": NULL.st_gid}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]


def test_symlink_and_directory(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/dev/null")
    assert devices_from_path(str(tmp_path / "link"), "/dev/x")[0][0]["major"] == 1
    (tmp_path / "dir/sub").mkdir(parents=True)
    (tmp_path / "dir/sub/null").symlink_to("/dev/null")  # links inside a directory are not followed
    (tmp_path / "dir/file").write_text("not a device")
    with pytest.raises(SystemError_) as info:
        devices_from_path(str(tmp_path / "dir"), "/dev/dir")
    assert info.value.message == (f'error gathering device information while adding custom device '
                                  f'"{tmp_path / "dir"}": not a device node')


@pytest.mark.parametrize("host, message", [
    ("/nonexistent-device", 'error gathering device information while adding custom device "/nonexistent-device": '
                            "no such file or directory"),
    ("/etc/hostname", 'error gathering device information while adding custom device "/etc/hostname": '
                      "not a device node"),
])
def test_bad_devices(host: str, message: str) -> None:
    with pytest.raises(SystemError_) as info:
        devices_from_path(host, host)
    assert info.value.message == message


@pytest.mark.parametrize("text, rule", [
    ("c 1:3 mr", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mr"}),
    ("a *:* rwm", {"allow": True, "type": "a", "major": -1, "minor": -1, "access": "rwm"}),
    ("b 8:* r", {"allow": True, "type": "b", "major": 8, "minor": -1, "access": "r"}),
])
def test_cgroup_rules(text: str, rule: dict) -> None:
    assert parse_cgroup_rule(text) == rule


@pytest.mark.parametrize("text", ["c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rwmr", "c a:3 r", "c 1:3 q"])
def test_bad_cgroup_rules(text: str) -> None:
    with pytest.raises(InvalidParameter, match="invalid device cgroup format"):
        parse_cgroup_rule(text)


def test_spec_keeps_the_access_a_device_was_given() -> None:
    devices, rules = devices_from_path("/dev/null", "/dev/mynull", "r")
    zero = {"path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0}
    spec = generate_spec(SpecOptions(args=["true"], devices=[*devices, zero], device_cgroup_rules=rules))
    added = [r for r in spec["linux"]["resources"]["devices"] if r.get("minor") in (3, 5) and r.get("major") == 1]
    # the defaults allow /dev/null and /dev/zero rwm by number already; then one rule per added device
    assert added[-2:] == [{"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]
