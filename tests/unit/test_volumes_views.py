"""Volume JSON shapes, list/prune filters and local driver option checks (pure)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.volumes import views
from berth.volumes.local import Volume, validate_options
from berth.volumes.mountspec import parse_bind, parse_mount

VOL = Volume("data-1", "2026-11-29T20:50:08Z", {"k": "v", "flag": ""}, None, False)
ANON = Volume("0" * 12 + "a" * 52, "2026-11-29T20:50:09Z", {"com.docker.volume.anonymous": ""}, None, True)


def test_volume_json_shape():
    assert views.volume_json(VOL, "/d/volumes/data-1/_data") == {
        "CreatedAt": "2026-11-29T20:50:08Z", "Driver": "local", "Labels": {"k": "v", "flag": ""},
        "Mountpoint": "/d/volumes/data-1/_data", "Name": "data-1", "Options": None, "Scope": "local"}
    bare = Volume("x1", "t", None, {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    out = views.volume_json(bare, "/m")
    assert out["Labels"] is None and out["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    # dockerd shows an empty map as the client sent it (the docker 20.10 CLI sends {}), nothing as null
    empty = views.volume_json(Volume("x2", "t", {}, {}), "/m")
    assert (empty["Labels"], empty["Options"]) == ({}, {})


DOCKER_KEYS = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")


@pytest.mark.parametrize("spec,name,path,expected", [
    (parse_bind("vol:/data"), "vol", "/v/vol/_data",
     {"Type": "volume", "Name": "vol", "Source": "/v/vol/_data", "Destination": "/data", "Driver": "local",
      "Mode": "z", "RW": True, "Propagation": ""}),
    (parse_bind("vol:/data:ro"), "vol", "/v/vol/_data",
     {"Type": "volume", "Name": "vol", "Source": "/v/vol/_data", "Destination": "/data", "Driver": "local",
      "Mode": "ro", "RW": False, "Propagation": ""}),
    (parse_bind("/tmp/h:/h:ro,Z"), "", "",
     {"Type": "bind", "Source": "/tmp/h", "Destination": "/h", "Mode": "ro,Z", "RW": False,
      "Propagation": "rprivate"}),
    (parse_mount({"Type": "bind", "Source": "/tmp/h", "Target": "/b2", "BindOptions": {"Propagation": "rshared"}}),
     "", "", {"Type": "bind", "Source": "/tmp/h", "Destination": "/b2", "Mode": "", "RW": True,
              "Propagation": "rshared"}),
    (parse_mount({"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 2097152}}), "", "",
     {"Type": "tmpfs", "Source": "", "Destination": "/t2", "Mode": "", "RW": True, "Propagation": ""}),
])
def test_mount_point_as_docker_shows_it(spec, name, path, expected):
    point = views.mount_point(spec, name, path)
    assert {k: point[k] for k in DOCKER_KEYS if k in point} == expected
    assert list(k for k in point if k in DOCKER_KEYS) == [k for k in DOCKER_KEYS if k in expected]
    assert views.mount_spec(point) == spec
    assert point["CopyData"] == (spec.type == "volume" and spec.copy_data)


@pytest.mark.parametrize("filters,in_use,expected", [
    ({}, False, True),
    ({"dangling": ["true"]}, False, True),
    ({"dangling": ["1"]}, True, False),
    ({"dangling": ["false"]}, True, True),
    ({"dangling": ["0"]}, False, False),
    ({"dangling": ["true", "false"]}, True, True),
    ({"name": ["data"]}, False, True),
    ({"name": ["^data-[0-9]$"]}, False, True),
    ({"name": ["other", "ta-"]}, False, True),
    ({"name": ["nope"]}, False, False),
    ({"driver": ["local"]}, False, True),
    ({"driver": ["loc"]}, False, False),
    ({"label": ["k"]}, False, True),
    ({"label": ["k=v"]}, False, True),
    ({"label": ["k=w"]}, False, False),
    ({"label": ["k=v", "flag"]}, False, True),
    ({"label": ["k=v", "missing"]}, False, False),
    ({"label": ["flag="]}, False, True),
])
def test_list_filters(filters, in_use, expected):
    views.check_filters(filters, views.LIST_FILTERS)
    assert views.list_matches(VOL, filters, in_use) is expected


@pytest.mark.parametrize("filters,allowed,message", [
    ({"foo": ["x"]}, views.LIST_FILTERS, "Invalid filter 'foo'"),
    ({"dangling": ["maybe"]}, views.LIST_FILTERS, "Invalid filter 'dangling=[maybe]'"),
    ({"dangling": ["TRUE"]}, views.LIST_FILTERS, "Invalid filter 'dangling=[TRUE]'"),
    ({"label!": ["x"]}, views.LIST_FILTERS, "Invalid filter 'label!'"),
    ({"name": ["x"]}, views.PRUNE_FILTERS, "Invalid filter 'name'"),
    ({"dangling": ["true"]}, views.PRUNE_FILTERS, "Invalid filter 'dangling'"),
    ({"all": ["yes"]}, views.PRUNE_FILTERS, "Invalid filter 'all=[yes]'"),
])
def test_filter_errors(filters, allowed, message):
    with pytest.raises(InvalidParameter) as err:
        views.check_filters(filters, allowed)
    assert err.value.message == message


@pytest.mark.parametrize("filters,volume,expected", [
    ({}, VOL, True),
    ({"label": ["k=v"]}, VOL, True),
    ({"label": ["k=v"]}, ANON, False),
    ({"label!": ["k"]}, VOL, False),
    ({"label!": ["k"]}, ANON, True),
    ({"label": ["com.docker.volume.anonymous"]}, ANON, True),
])
def test_prune_filters(filters, volume, expected):
    assert views.prune_matches(volume, filters) is expected


@pytest.mark.parametrize("filters,expected", [({}, False), ({"all": ["true"]}, True), ({"all": ["0"]}, False),
                                              ({"all": ["1"]}, True)])
def test_prune_all(filters, expected):
    assert views.prune_all(filters) is expected


@pytest.mark.parametrize("options,message", [
    ({}, None),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}, None),
    ({"type": "none", "o": "bind", "device": "/srv"}, None),
    ({"type": "", "device": ""}, None),
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"o": ""}, 'missing required option: "device"'),
    ({"device": "/tmp"}, 'missing required option: "type"'),
    ({"device": "/tmp", "o": "bind"}, 'missing required option: "type"'),
    # size is a quota: dockerd (without quota support, as here) answers these
    ({"size": "0"}, None),
    ({"size": "1m"}, "quota size requested but no quota support"),
    ({"size": "1.5k"}, "quota size requested but no quota support"),
    ({"size": "1m", "type": "tmpfs"}, 'missing required option: "device"'),
    ({"size": "1m", "foo": "1"}, 'invalid option: "foo"'),
    ({"size": "abc"}, "invalid size: 'abc'"),
    ({"size": "-1"}, "invalid size: '-1'"),
    ({"size": "1.2.3"}, 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
])
def test_local_driver_options(options, message):
    if message is None:
        validate_options(options)
        return
    with pytest.raises(InvalidParameter) as err:
        validate_options(options)
    assert err.value.message == message
