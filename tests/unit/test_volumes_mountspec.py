"""Mount specs: -v/Binds, --mount/Mounts, --tmpfs/Tmpfs, --volumes-from, precedence.

Expected values and error texts were taken from dockerd 20.10 (API v1.41) for the same input.
"""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.volumes import mountspec as ms
from berth.volumes.mountspec import MountSpec

# (raw, type, destination, source, read_only, mode, propagation, copy_data)
BINDS = [
    ("/data", "volume", "/data", "", False, "z", "", True),
    ("vol:/data", "volume", "/data", "vol", False, "z", "", True),
    ("vol:/data:", "volume", "/data", "vol", False, "z", "", True),
    ("vol:/data:ro", "volume", "/data", "vol", True, "ro", "", True),
    ("vol:/data:rw", "volume", "/data", "vol", False, "rw", "", True),
    ("vol:/data:nocopy", "volume", "/data", "vol", False, "nocopy", "", False),
    ("vol:/data:rw,nocopy", "volume", "/data", "vol", False, "rw,nocopy", "", False),
    ("vol:/data/../other/", "volume", "/other", "vol", False, "z", "", True),
    ("/host:/x", "bind", "/x", "/host", False, "", "rprivate", False),
    ("/host:/x:ro,Z", "bind", "/x", "/host", True, "ro,Z", "rprivate", False),
    ("/host:/x:z", "bind", "/x", "/host", False, "z", "rprivate", False),
    ("/host:/x:rslave", "bind", "/x", "/host", False, "rslave", "rslave", False),
    ("/host:/x:ro,shared", "bind", "/x", "/host", True, "ro,shared", "shared", False),
    ("/host/../h2/:/x", "bind", "/x", "/h2", False, "", "rprivate", False),
]


@pytest.mark.parametrize("raw,kind,dest,source,ro,mode,prop,copy", BINDS)
def test_parse_bind(raw, kind, dest, source, ro, mode, prop, copy):
    spec = ms.parse_bind(raw)
    assert (spec.type, spec.destination, spec.source, spec.read_only, spec.mode, spec.propagation,
            spec.copy_data) == (kind, dest, source, ro, mode, prop, copy)
    assert spec.create_source == (kind == "bind")
    assert spec.origin == ms.FROM_BINDS


BIND_ERRORS = [
    ("vV1x", "invalid volume specification: 'vV1x': invalid mount config for type \"volume\": invalid mount "
             "path: 'vV1x' mount path must be absolute"),
    ("vV1x:rel", "invalid volume specification: 'vV1x:rel': invalid mount config for type \"volume\": "
                 "invalid mount path: 'rel' mount path must be absolute"),
    ("vV1x:/x:bad", "invalid mode: bad"),
    ("vV1x:/x:ro,rw", "invalid mode: ro,rw"),
    ("vV1x:/x:z,Z", "invalid mode: z,Z"),
    ("vV1x:/x:nocopy,nocopy", "invalid mode: nocopy,nocopy"),
    ("/h:/x:shared,slave", "invalid mode: shared,slave"),
    ("vV1x:/x:shared", "invalid volume specification: 'vV1x:/x:shared': invalid mount config for type "
                       "\"volume\": field BindOptions must not be specified"),
    ("/tmp/h:/x:nocopy", "invalid volume specification: '/tmp/h:/x:nocopy': invalid mount config for type "
                         "\"bind\": field VolumeOptions must not be specified"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/h:/x:ro:z", "invalid volume specification: '/h:/x:ro:z'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("/x:ro", "invalid volume specification: '/x:ro'"),
    ("/x:", "invalid volume specification: '/x:'"),
    ("vV1x::ro", "invalid volume specification: 'vV1x::ro': invalid mount config for type \"volume\": "
                 "field Target must not be empty"),
    ("/tmp/h:/", "invalid volume specification: '/tmp/h:/': invalid mount config for type \"bind\": "
                 "invalid specification: destination can't be '/'"),
]


@pytest.mark.parametrize("raw,message", BIND_ERRORS)
def test_parse_bind_errors(raw, message):
    with pytest.raises(InvalidParameter) as err:
        ms.parse_bind(raw)
    assert err.value.message == message


MOUNTS = [
    ({"Type": "volume", "Source": "v1", "Target": "/m"},
     MountSpec("volume", "/m", "v1", False, "z", "", True, origin=ms.FROM_MOUNTS)),
    ({"Type": "volume", "Target": "/g"},
     MountSpec("volume", "/g", "", False, "z", "", True, origin=ms.FROM_MOUNTS)),
    ({"Type": "volume", "Source": "v1", "Target": "/m", "ReadOnly": True,
      "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
     MountSpec("volume", "/m", "v1", True, "z", "", False, labels={"a": "b"},
               driver_options={"type": "tmpfs"}, driver="local", origin=ms.FROM_MOUNTS)),
    ({"Type": "bind", "Source": "/h", "Target": "/b"},
     MountSpec("bind", "/b", "/h", False, "", "rprivate", False, origin=ms.FROM_MOUNTS)),
    ({"Type": "bind", "Source": "/h/", "Target": "/b/", "ReadOnly": True,
      "BindOptions": {"Propagation": "rshared", "NonRecursive": True, "CreateMountpoint": True}},
     MountSpec("bind", "/b", "/h", True, "", "rshared", False, create_source=True, recursive=False,
               origin=ms.FROM_MOUNTS)),
    ({"Type": "bind", "Source": "/h", "Target": "/b", "TmpfsOptions": {"SizeBytes": 1}},
     MountSpec("bind", "/b", "/h", False, "", "rprivate", False, origin=ms.FROM_MOUNTS)),
    ({"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 2097152, "Mode": 0o700}},
     MountSpec("tmpfs", "/t2", "", False, "", "", False, tmpfs_data=("mode=700", "size=2m"),
               origin=ms.FROM_MOUNTS)),
    ({"Type": "tmpfs", "Target": "/t", "ReadOnly": True, "VolumeOptions": {}},
     MountSpec("tmpfs", "/t", "", True, "", "", False, origin=ms.FROM_MOUNTS)),
]


@pytest.mark.parametrize("mount,expected", MOUNTS)
def test_parse_mount(mount, expected):
    assert ms.parse_mount(mount) == expected


MOUNT_ERRORS = [
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/tmp", "Target": ""},
     "invalid mount config for type \"bind\": field Target must not be empty"),
    ({"Type": "bind", "Target": "/x"}, "invalid mount config for type \"bind\": field Source must not be empty"),
    ({"Type": "bind", "Source": "/tmp", "Target": "rel"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/tmp", "Target": "/"},
     "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Source": "rel", "Target": "/"},
     "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Source": "/tmp", "Target": "/x", "VolumeOptions": {"NoCopy": True}},
     "invalid mount config for type \"bind\": field VolumeOptions must not be specified"),
    ({"Type": "bind", "Source": "/missing", "Target": "/x", "BindOptions": {"Propagation": "bogus"}},
     "invalid mount config for type \"bind\": invalid propagation mode: bogus"),
    ({"Type": "volume", "Target": ""}, "invalid mount config for type \"volume\": field Target must not be empty"),
    ({"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "shared"}},
     "invalid mount config for type \"volume\": field BindOptions must not be specified"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
    ({"Type": "tmpfs", "Source": "/tmp", "Target": "/x"},
     "invalid mount config for type \"tmpfs\": field Source must not be specified"),
    ({"Type": "tmpfs", "Target": "/x", "BindOptions": {}},
     "invalid mount config for type \"tmpfs\": field BindOptions must not be specified"),
    ({"Type": "tmpfs", "Target": "rel"},
     "invalid mount config for type \"tmpfs\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "npipe", "Target": "/x"}, "invalid mount config for type \"npipe\": mount type unknown"),
    ({"Target": "/x"}, "invalid mount config for type \"\": mount type unknown"),
    ({"Type": "foo"}, "invalid mount config for type \"foo\": field Target must not be empty"),
]


@pytest.mark.parametrize("mount,message", MOUNT_ERRORS)
def test_parse_mount_errors(mount, message):
    with pytest.raises(InvalidParameter) as err:
        ms.parse_mount(mount)
    assert err.value.message == message


TMPFS_OPTIONS = [
    # (HostConfig.Tmpfs value, OCI options) as dockerd 20.10 wrote them into config.json
    ("", ("noexec", "nosuid", "nodev", "rprivate")),
    ("size=1m,exec", ("nosuid", "nodev", "rprivate", "size=1m", "exec")),
    ("ro,mode=755,size=10k,uid=5,rprivate,shared",
     ("noexec", "nosuid", "nodev", "ro", "mode=755", "size=10k", "uid=5", "shared")),
    ("size=1m,size=2m", ("noexec", "nosuid", "nodev", "rprivate", "size=2m")),
    ("mode=1777,nr_inodes=100,gid=3,dev", ("noexec", "nosuid", "rprivate", "mode=1777", "nr_inodes=100", "gid=3",
                                           "dev")),
]


@pytest.mark.parametrize("options,expected", TMPFS_OPTIONS)
def test_tmpfs_options(options, expected):
    spec = ms.parse_tmpfs("/t/", options)
    assert spec.destination == "/t"
    assert ms.tmpfs_mount_options(spec) == expected


@pytest.mark.parametrize("tmpfs,expected", [
    ({"Mode": 0o1777, "SizeBytes": 1000}, ("noexec", "nosuid", "nodev", "rprivate", "ro", "mode=1777", "size=1000")),
    ({"SizeBytes": 3 << 30}, ("noexec", "nosuid", "nodev", "rprivate", "ro", "size=3g")),
    ({"SizeBytes": 5 << 10}, ("noexec", "nosuid", "nodev", "rprivate", "ro", "size=5k")),
    ({"SizeBytes": -1}, ("noexec", "nosuid", "nodev", "rprivate", "ro")),
])
def test_tmpfs_mount_options_from_mounts(tmpfs, expected):
    spec = ms.parse_mount({"Type": "tmpfs", "Target": "/t", "ReadOnly": True, "TmpfsOptions": tmpfs})
    assert ms.tmpfs_mount_options(spec) == expected


@pytest.mark.parametrize("options,message", [
    ("bogus=1", 'invalid tmpfs option ["bogus" "1"]'),
    ("size=1m,nosuchflag", 'invalid tmpfs option ["nosuchflag"]'),
])
def test_tmpfs_option_errors(options, message):
    spec = ms.parse_tmpfs("/x", options)
    with pytest.raises(InvalidParameter) as err:
        ms.tmpfs_mount_options(spec)
    assert err.value.message == message


@pytest.mark.parametrize("dest,message", [
    ("rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("/", "invalid specification: destination can't be '/'"),
])
def test_tmpfs_destination_errors(dest, message):
    with pytest.raises(InvalidParameter) as err:
        ms.parse_tmpfs_map({dest: ""})
    assert err.value.message == message


@pytest.mark.parametrize("raw,expected", [
    ("web", ("web", "")), ("web:ro", ("web", "ro")), ("web:rw", ("web", "rw")), ("web:Z", ("web", "Z")),
])
def test_parse_volumes_from(raw, expected):
    assert ms.parse_volumes_from(raw) == expected


@pytest.mark.parametrize("raw,message", [("web:bad", "invalid mode: bad"), ("web:ro:z", "invalid mode: ro:z")])
def test_parse_volumes_from_errors(raw, message):
    with pytest.raises(InvalidParameter) as err:
        ms.parse_volumes_from(raw)
    assert err.value.message == message


def _point(kind, dest, source="", name="", rw=True, propagation=""):
    return {"Type": kind, "Name": name, "Source": source, "Destination": dest, "Driver": "local", "Mode": "z",
            "RW": rw, "Propagation": propagation}


@pytest.mark.parametrize("point,mode,expected", [
    (_point("volume", "/a", "/v/a/_data", "a"), "", MountSpec("volume", "/a", "a", False, "", "", False,
                                                                origin=ms.FROM_VOLUMES_FROM)),
    (_point("volume", "/a", "/v/a/_data", "a"), "ro", MountSpec("volume", "/a", "a", True, "", "", False,
                                                                  origin=ms.FROM_VOLUMES_FROM)),
    (_point("volume", "/a", "/v/a/_data", "a", rw=False), "rw",
     MountSpec("volume", "/a", "a", True, "", "", False, origin=ms.FROM_VOLUMES_FROM)),
    (_point("bind", "/e", "/h", propagation="rslave"), "Z",
     MountSpec("bind", "/e", "/h", False, "", "rslave", False, origin=ms.FROM_VOLUMES_FROM)),
])
def test_from_mount_point(point, mode, expected):
    assert ms.from_mount_point(point, mode) == expected


def _dests(specs):
    return [(s.destination, s.origin, s.type, s.source) for s in specs]


def test_plan_precedence():
    inherited = [ms.from_mount_point(_point("volume", "/a", "/v/a", "a"), ""),
                 ms.from_mount_point(_point("volume", "/b", "/v/b", "b"), "")]
    binds = [ms.parse_bind("/host:/a"), ms.parse_bind("named:/c")]
    mounts = [ms.parse_mount({"Type": "volume", "Source": "m", "Target": "/b"})]
    plan = ms.plan_mounts(inherited, binds, mounts, {"/t"}, ["/a", "/img", "/t", "/c/"])
    assert _dests(plan) == [
        ("/a", ms.FROM_BINDS, "bind", "/host"),
        ("/b", ms.FROM_MOUNTS, "volume", "m"),
        ("/c", ms.FROM_BINDS, "volume", "named"),
        ("/img", ms.FROM_IMAGE, "volume", ""),
    ]
    assert plan[-1].mode == "" and plan[-1].copy_data


@pytest.mark.parametrize("binds,mounts,tmpfs", [
    (["/h:/x", "v:/x"], [], set()),
    (["/h:/x/"], [{"Type": "tmpfs", "Target": "/x"}], set()),
    (["/h:/x"], [], {"/x"}),
    ([], [{"Type": "tmpfs", "Target": "/x"}, {"Type": "volume", "Target": "/x"}], set()),
])
def test_plan_duplicates(binds, mounts, tmpfs):
    with pytest.raises(InvalidParameter) as err:
        ms.plan_mounts([], [ms.parse_bind(b) for b in binds], [ms.parse_mount(m) for m in mounts], tmpfs, [])
    assert err.value.message == "Duplicate mount point: /x"


def test_plan_mount_and_tmpfs_at_same_place_allowed():
    # dockerd 20.10 accepts a --mount type=tmpfs where a --tmpfs is; the --tmpfs wins at start.
    plan = ms.plan_mounts([], [], [ms.parse_mount({"Type": "tmpfs", "Target": "/x"})], {"/x"}, [])
    assert _dests(plan) == [("/x", ms.FROM_MOUNTS, "tmpfs", "")]


@pytest.mark.parametrize("name,error", [
    ("ab", None), ("a.b_c-d", None), ("0x", None),
    ("a", "volume name is too short, names should be at least two alphanumeric characters"),
    ("-", "volume name is too short, names should be at least two alphanumeric characters"),
    ("ab\n", '"ab\\n" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are '
              "allowed. If you intended to pass a host directory, use absolute path"),
    ("-ab", '"-ab" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are '
            "allowed. If you intended to pass a host directory, use absolute path"),
    ("a/b", '"a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are '
            "allowed. If you intended to pass a host directory, use absolute path"),
])
def test_volume_name_error(name, error):
    assert ms.volume_name_error(name) == error


def test_spec_record_round_trip():
    spec = ms.parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}})
    assert MountSpec.from_record(spec.to_record()) == spec


@pytest.mark.parametrize("path,cleaned", [("/a/b/", "/a/b"), ("//a//b", "/a/b"), ("/a/../..", "/"), ("", "."),
                                          ("rel/./x", "rel/x")])
def test_clean_path(path, cleaned):
    assert ms.clean_path(path) == cleaned
