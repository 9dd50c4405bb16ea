"""Container mounts through the volume service: validate at create, setup at start (copy-up,
bind sources, OCI mounts), teardown, remove; the mounts made for real in a private mount
namespace with the runtime's own mount code."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from berth.errors import InvalidParameter, NotFound, SystemError_
from berth.runtime.spec import Mount
from tests.daemon_fixture import unmount_under
from tests.integration.test_volumes_service import Env, mounted, run, uniq


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    try:
        yield e
    finally:
        unmount_under(tmp_path)
        e.db.close()


def docker_view(points: list[dict]) -> list[dict]:
    keys = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
    return [{k: p[k] for k in keys if k in p} for p in points]


def make_image_dir(rootfs: Path) -> Path:
    """``/vol`` of an image: owner 1000:1001 mode 0750, a file with an xattr, a symlink, a hard
    link, a fifo and a nested directory."""
    vol = rootfs / "vol"
    (vol / "sub").mkdir(parents=True)
    f = vol / "sub" / "f"
    f.write_text("hi")
    os.setxattr(f, "user.berth", b"y")
    os.chmod(f, 0o604)
    os.link(f, vol / "hard")
    os.symlink("/etc/passwd", vol / "link")
    os.mkfifo(vol / "fifo", 0o640)
    for p in (vol, vol / "sub", f, vol / "fifo"):
        os.chown(p, 1000, 1001)
    os.lchown(vol / "link", 1000, 1001)
    os.chmod(vol, 0o750)
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    return vol


# ----- create ---------------------------------------------------------------------------------
def test_mount_points_as_docker_inspect_shows_them(env, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    named, mnamed = uniq(), uniq()
    c = env.create({
        "Binds": [f"{named}:/data", f"{host}:/h:ro,Z", "/banon"],
        "Tmpfs": {"/t": "size=1m"},
        "Mounts": [{"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 2097152, "Mode": 0o700}},
                   {"Type": "volume", "Source": mnamed, "Target": "/m",
                    "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}}},
                   {"Type": "bind", "Source": str(host), "Target": "/b2", "BindOptions": {"Propagation": "rshared"}}],
    }, volumes={"/anon": {}, "/t": {}})
    vols = env.config.data_root / "volumes"
    anon = c.mounts[-1]["Name"]
    banon = c.mounts[2]["Name"]
    assert docker_view(c.mounts) == [
        {"Type": "volume", "Name": named, "Source": f"{vols}/{named}/_data", "Destination": "/data",
         "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": str(host), "Destination": "/h", "Mode": "ro,Z", "RW": False,
         "Propagation": "rprivate"},
        {"Type": "volume", "Name": banon, "Source": f"{vols}/{banon}/_data", "Destination": "/banon",
         "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "tmpfs", "Source": "", "Destination": "/t2", "Mode": "", "RW": True, "Propagation": ""},
        {"Type": "volume", "Name": mnamed, "Source": f"{vols}/{mnamed}/_data", "Destination": "/m",
         "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": str(host), "Destination": "/b2", "Mode": "", "RW": True, "Propagation": "rshared"},
        {"Type": "volume", "Name": anon, "Source": f"{vols}/{anon}/_data", "Destination": "/anon",
         "Driver": "local", "Mode": "", "RW": True, "Propagation": ""},
    ]
    assert env.service.inspect(mnamed)["Labels"] == {"a": "b"}
    assert env.service.inspect(anon)["Labels"] == {"com.docker.volume.anonymous": ""}
    assert len(anon) == 64


@pytest.mark.parametrize("host_config,error,message", [
    ({"Mounts": [{"Type": "bind", "Source": "/missing-berth-src", "Target": "/x"}]}, InvalidParameter,
     'invalid mount config for type "bind": bind source path does not exist: /missing-berth-src'),
    ({"Mounts": [{"Type": "bind", "Source": "rel", "Target": "/x"}]}, InvalidParameter,
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Binds": ["rel/dir:/x"]}, InvalidParameter,
     'create rel/dir: "rel/dir" includes invalid characters for a local volume name, only '
     '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'),
    ({"Binds": ["/tmp:/x", "/tmp:/x"]}, InvalidParameter, "Duplicate mount point: /x"),
    ({"VolumesFrom": ["nope-berth"]}, InvalidParameter, "No such container: nope-berth"),
    ({"Binds": ["okvol:/x"], "VolumeDriver": "nope"}, NotFound,
     'create okvol: error looking up volume plugin nope: plugin "nope" not found'),
])
def test_create_errors(env, host_config, error, message):
    with pytest.raises(error) as err:
        env.create(host_config)
    assert err.value.message == message
    assert env.service.list_volumes({})["Volumes"] == []


def test_anonymous_mount_keeps_its_labels(env):
    c = env.create({"Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": {"Labels": {"k": "v"}}}]})
    assert env.service.inspect(c.mounts[0]["Name"])["Labels"] == {"k": "v", "com.docker.volume.anonymous": ""}


def test_failed_create_removes_the_volumes_it_made(env):
    existing, fresh = uniq(), uniq()
    run(env.service.create(existing))
    with pytest.raises(NotFound):
        env.create({"Binds": [f"{existing}:/a", f"{fresh}:/b", "/anon"],
                    "Mounts": [{"Type": "volume", "Source": "other", "Target": "/c",
                                "VolumeOptions": {"DriverConfig": {"Name": "nope"}}}]})
    assert [v["Name"] for v in env.service.list_volumes({})["Volumes"]] == [existing]


def test_missing_host_dir_created_for_v_not_for_mount(env, tmp_path):
    missing = tmp_path / "missing" / "dir"
    c = env.create({"Binds": [f"{missing}:/x"]})
    assert not missing.exists()  # docker creates it at start, not create
    mounts = run(env.service.setup(c, tmp_path))
    assert missing.is_dir() and stat.S_IMODE(os.stat(missing).st_mode) == 0o755
    assert mounts == [Mount("/x", str(missing), "bind", ("rbind", "rprivate"))]
    other = tmp_path / "other"
    with pytest.raises(InvalidParameter) as err:
        env.create({"Mounts": [{"Type": "bind", "Source": str(other), "Target": "/x"}]})
    assert err.value.message == f'invalid mount config for type "bind": bind source path does not exist: {other}'
    assert not other.exists()
    made = env.create({"Mounts": [{"Type": "bind", "Source": str(other), "Target": "/x",
                                   "BindOptions": {"CreateMountpoint": True}}]})
    run(env.service.setup(made, tmp_path))
    assert other.is_dir()


def test_volumes_from(env, tmp_path):
    host = tmp_path / "h"
    host.mkdir()
    vol = uniq()
    a = env.create({"Binds": [f"{vol}:/a:ro", f"{host}:/e:rslave"], "Mounts": [
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]}, volumes={"/anon": {}})
    b = env.create({"VolumesFrom": [f"{a.name}:rw"], "Binds": [f"{host}:/a"]})
    c = env.create({"VolumesFrom": [a.id[:12] + ":ro"]})
    anon = a.mounts[-1]["Name"]
    vols = env.config.data_root / "volumes"
    assert docker_view(b.mounts) == [
        {"Type": "bind", "Source": str(host), "Destination": "/a", "Mode": "", "RW": True, "Propagation": "rprivate"},
        {"Type": "bind", "Source": str(host), "Destination": "/e", "Mode": "", "RW": True, "Propagation": "rslave"},
        {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
        {"Type": "volume", "Name": anon, "Source": f"{vols}/{anon}/_data", "Destination": "/anon",
         "Driver": "local", "Mode": "", "RW": True, "Propagation": ""},
    ]
    assert [(p["Destination"], p["RW"]) for p in c.mounts] == [("/a", False), ("/e", False), ("/t", False),
                                                               ("/anon", False)]
    # c's anonymous volume belongs to a: c's rm -v leaves it while a exists; a's rm -v removes it.
    env.remove(c, anonymous=True)
    env.remove(b, anonymous=True)
    assert env.service.inspect(anon)["Name"] == anon
    env.remove(a, anonymous=True)
    assert [v["Name"] for v in env.service.list_volumes({})["Volumes"]] == [vol]


def test_remove_container_keeps_named_and_removes_anonymous(env):
    named = uniq()
    c = env.create({"Binds": [f"{named}:/n", "/b"], "Mounts": [{"Type": "volume", "Target": "/m"}]},
                   volumes={"/img": {}})
    anonymous = sorted(p["Name"] for p in c.mounts if p["Name"] != named)
    assert len(anonymous) == 3
    listed = lambda: sorted(v["Name"] for v in env.service.list_volumes({})["Volumes"])  # noqa: E731
    assert listed() == sorted([named, *anonymous])
    d = env.create(volumes={"/img": {}})
    env.remove(d, anonymous=False)  # without -v: its anonymous volume stays
    leftover = d.mounts[0]["Name"]
    env.remove(c, anonymous=True)
    assert listed() == sorted([named, leftover])
    destroyed = [n for act, n, _ in env.volume_events() if act == "destroy"]
    assert sorted(destroyed) == anonymous


# ----- start: copy-up -------------------------------------------------------------------------
def test_copy_up_keeps_owner_mode_xattrs_and_happens_once(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    make_image_dir(rootfs)
    vol = uniq()
    c = env.create({"Binds": [f"{vol}:/vol"]})
    data = env.config.data_root / "volumes" / vol / "_data"
    run(env.service.setup(c, rootfs))
    st = os.stat(data)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o750)
    f = data / "sub" / "f"
    fst = os.stat(f)
    assert (f.read_text(), fst.st_uid, fst.st_gid, stat.S_IMODE(fst.st_mode)) == ("hi", 1000, 1001, 0o604)
    assert fst.st_mtime_ns == 2_000_000_000
    assert os.getxattr(f, "user.berth") == b"y"
    assert os.stat(data / "hard").st_ino == fst.st_ino
    assert os.readlink(data / "link") == "/etc/passwd" and os.lstat(data / "link").st_uid == 1000
    assert stat.S_ISFIFO(os.stat(data / "fifo").st_mode)
    assert c.mounts[0]["CopyData"] is False
    # Emptied by the container: the next start does not copy again.
    run(env.service.teardown(c))
    for p in sorted(data.rglob("*"), key=lambda p: -len(p.parts)):
        p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    run(env.service.setup(c, rootfs))
    assert list(data.iterdir()) == []
    # A new container on the (empty) volume copies again, as a new docker container would.
    d = env.create({"Binds": [f"{vol}:/vol"]})
    run(env.service.setup(d, rootfs))
    assert (data / "sub" / "f").read_text() == "hi"


@pytest.mark.parametrize("binds,mounts", [
    ([], [{"Type": "volume", "Source": "NAME", "Target": "/vol", "VolumeOptions": {"NoCopy": True}}]),
    (["NAME:/vol:nocopy"], []),
])
def test_nocopy(env, tmp_path, binds, mounts):
    rootfs = tmp_path / "rootfs"
    make_image_dir(rootfs)
    vol = uniq()
    binds = [b.replace("NAME", vol) for b in binds]
    mounts = [dict(m, Source=vol) for m in mounts]
    c = env.create({"Binds": binds, "Mounts": mounts})
    run(env.service.setup(c, rootfs))
    data = env.config.data_root / "volumes" / vol / "_data"
    assert list(data.iterdir()) == []
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o755 and os.stat(data).st_uid == 0


def test_copy_up_skips_a_volume_with_content_and_volumes_from(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    make_image_dir(rootfs)
    vol = uniq()
    run(env.service.create(vol))
    data = env.config.data_root / "volumes" / vol / "_data"
    (data / "mine").write_text("mine")
    c = env.create({"Binds": [f"{vol}:/vol"]})
    run(env.service.setup(c, rootfs))
    assert sorted(p.name for p in data.iterdir()) == ["mine"]
    empty = uniq()
    a = env.create({"Binds": [f"{empty}:/elsewhere"]})
    b = env.create({"VolumesFrom": [a.id]}, volumes={"/vol": {}})
    run(env.service.setup(b, rootfs))
    assert list((env.config.data_root / "volumes" / empty / "_data").iterdir()) == []
    # b's image volume at /vol is its own anonymous volume and is filled.
    anon = next(p["Name"] for p in b.mounts if p["Destination"] == "/vol")
    assert (env.config.data_root / "volumes" / anon / "_data" / "sub" / "f").exists()


def test_image_volume_over_a_file_is_refused(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    c = env.create(volumes={"/etc/passwd": {}})
    with pytest.raises(SystemError_) as err:
        run(env.service.setup(c, rootfs))
    assert err.value.message == f"cannot mount volume over existing file, file exists {rootfs}/etc/passwd"


def test_copy_up_source_resolved_inside_rootfs(env, tmp_path):
    # /vol is a symlink to an absolute path: it must resolve inside the rootfs, not on the host.
    rootfs = tmp_path / "rootfs"
    (rootfs / "real").mkdir(parents=True)
    (rootfs / "real" / "inside").write_text("inside")
    os.symlink("/real", rootfs / "vol")
    c = env.create(volumes={"/vol": {}})
    run(env.service.setup(c, rootfs))
    anon = c.mounts[0]["Name"]
    assert [p.name for p in (env.config.data_root / "volumes" / anon / "_data").iterdir()] == ["inside"]


# ----- create: populate -----------------------------------------------------------------------
def test_populate_copies_at_create_and_start_does_not_again(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    make_image_dir(rootfs)
    vol = uniq()
    c = env.create({"Binds": [f"{vol}:/vol"]}, volumes={"/anon": {}})
    assert env.service.wants_image_content(c)
    run(env.service.populate(c, rootfs))
    data = env.config.data_root / "volumes" / vol / "_data"
    assert (data / "sub" / "f").read_text() == "hi"
    assert [p["CopyData"] for p in c.mounts] == [False, False]
    # Emptied between create and start (another container, cp...): start copies nothing.
    for p in sorted(data.rglob("*"), key=lambda p: -len(p.parts)):
        p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    run(env.service.setup(c, rootfs))
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("host_config,volumes,wanted", [
    ({"Binds": ["NAME:/vol"]}, None, True),
    ({"Binds": ["NAME:/vol:nocopy"]}, None, False),
    ({"Binds": ["/tmp:/vol"]}, None, False),
    ({"Tmpfs": {"/t": ""}}, None, False),
    ({"Binds": ["NAME:/vol:nocopy"]}, {"/anon": {}}, True),   # image volume: its path is checked
])
def test_wants_image_content(env, host_config, volumes, wanted):
    binds = [b.replace("NAME", uniq()) for b in host_config.get("Binds", [])]
    c = env.create({**host_config, "Binds": binds}, volumes=volumes)
    assert env.service.wants_image_content(c) is wanted


def test_populate_refuses_an_image_volume_over_a_file(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    c = env.create(volumes={"/etc/passwd": {}})
    with pytest.raises(SystemError_) as err:
        run(env.service.populate(c, rootfs))
    assert err.value.message == f"cannot mount volume over existing file, file exists {rootfs}/etc/passwd"


def test_populate_mounts_a_driver_volume_for_the_copy_only(env, tmp_path):
    rootfs = tmp_path / "rootfs"
    make_image_dir(rootfs)
    vol = uniq()
    run(env.service.create(vol, options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}))
    c = env.create({"Binds": [f"{vol}:/vol"]})
    run(env.service.populate(c, rootfs))
    data = env.config.data_root / "volumes" / vol / "_data"
    # dockerd copies into the mounted tmpfs and unmounts it again: the copy is gone with it.
    assert not mounted(data) and list(data.iterdir()) == []
    assert env.service.driver.users(vol) == set()


def test_populate_mounts_nothing_when_the_image_has_no_content_there(env, tmp_path):
    bad = uniq()
    run(env.service.create(bad, options={"type": "tmpfs", "device": "tmpfs", "o": "bogus"}))
    c = env.create({"Binds": [f"{bad}:/nothing-here"]})
    run(env.service.populate(c, tmp_path))  # would fail if it mounted the volume
    assert c.mounts[0]["CopyData"] is False
    (tmp_path / "vol").mkdir()
    c = env.create({"Binds": [f"{bad}:/vol"]})
    with pytest.raises(SystemError_) as err:
        run(env.service.populate(c, tmp_path))
    data = env.config.data_root / "volumes" / bad / "_data"
    # dockerd's CopyImagePathContent mounts without MountPoint.Setup's "error while mounting" prefix
    assert err.value.message == f"failed to mount local volume: mount tmpfs:{data}, data: bogus: invalid argument"


def test_hold_for_files_mounts_driver_volumes_of_a_stopped_container(env, tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    bound, plain = uniq(), uniq()
    run(env.service.create(bound, options={"type": "none", "o": "bind", "device": str(device)}))
    c = env.create({"Binds": [f"{bound}:/b", f"{plain}:/p"]})
    data = env.config.data_root / "volumes" / bound / "_data"
    run(env.service.hold_for_files(c))
    assert mounted(data) and not mounted(env.config.data_root / "volumes" / plain / "_data")
    (data / "through").write_text("x")
    assert (device / "through").read_text() == "x"
    run(env.service.setup(c, tmp_path))  # the container starts meanwhile: its own hold
    run(env.service.release_for_files(c))
    assert mounted(data)
    run(env.service.teardown(c))
    assert not mounted(data)
    run(env.service.release_for_files(c))  # idempotent


# ----- start: OCI mounts ----------------------------------------------------------------------
def test_setup_returns_docker_oci_mounts(env, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    vol = uniq()
    # A bind where a --tmpfs is, is a duplicate; shadowing happens only for volumes-from mounts.
    with pytest.raises(InvalidParameter):
        env.create({"Binds": [f"{host}:/shadowed"], "Tmpfs": {"/shadowed": ""}})
    src = env.create({"Binds": [f"{host}:/shadowed"]})
    c = env.create({
        "VolumesFrom": [src.id],
        "Binds": [f"{vol}:/data:ro", f"{host}:/h:ro"],
        "Tmpfs": {"/t": "size=1m,exec", "/shadowed": ""},
        "Mounts": [{"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 2097152, "Mode": 0o700}},
                   {"Type": "bind", "Source": str(host), "Target": "/b", "ReadOnly": True,
                    "BindOptions": {"NonRecursive": True}}],
    })
    data = env.config.data_root / "volumes" / vol / "_data"
    mounts = run(env.service.setup(c, tmp_path / "no-rootfs"))
    assert [m.to_oci() for m in mounts] == [
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
        {"destination": "/h", "type": "bind", "source": str(host), "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/t2", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "nosuid", "nodev", "rprivate", "mode=700", "size=2m"]},
        {"destination": "/b", "type": "bind", "source": str(host), "options": ["bind", "ro", "rprivate"]},
        {"destination": "/shadowed", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "nosuid", "nodev", "rprivate"]},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "rprivate", "size=1m", "exec"]},
    ]


def test_bad_tmpfs_option_fails_at_start(env, tmp_path):
    c = env.create({"Tmpfs": {"/x": "bogus=1"}})
    with pytest.raises(InvalidParameter) as err:
        run(env.service.setup(c, tmp_path))
    assert err.value.message == 'invalid tmpfs option ["bogus" "1"]'


def test_failed_setup_releases_what_it_mounted(env, tmp_path):
    tmpvol = uniq()
    run(env.service.create(tmpvol, "", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}))
    data = env.config.data_root / "volumes" / tmpvol / "_data"
    c = env.create({"Binds": [f"{tmpvol}:/x"], "Tmpfs": {"/y": "bogus"}})
    with pytest.raises(InvalidParameter):
        run(env.service.setup(c, tmp_path))
    assert not mounted(data)


def test_propagation_needs_a_shared_source(env, tmp_path):
    host = tmp_path / "prop"
    host.mkdir()
    c = env.create({"Binds": [f"{host}:/x:rshared"]})
    subprocess.run(["mount", "--bind", str(host), str(host)], check=True)
    try:
        subprocess.run(["mount", "--make-private", str(host)], check=True)
        with pytest.raises(SystemError_) as err:
            run(env.service.setup(c, tmp_path))
        assert err.value.message == f"path {host} is mounted on {host} but it is not a shared mount"
        subprocess.run(["mount", "--make-shared", str(host)], check=True)
        mounts = run(env.service.setup(c, tmp_path))
        assert mounts[0].options == ("rbind", "rshared")
    finally:
        subprocess.run(["umount", "-l", str(host)], check=False)


def test_restart_adopts_running_containers_and_repairs(env, tmp_path):
    vol = uniq()
    run(env.service.create(vol, "", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}))
    data = env.config.data_root / "volumes" / vol / "_data"
    c = env.create({"Binds": [f"{vol}:/x"]})
    run(env.service.setup(c, tmp_path))
    c.state.status, c.state.pid = "running", 1
    vols = env.config.data_root / "volumes"
    (vols / ".tmp-leftover" / "_data").mkdir(parents=True)
    orphan = uniq("orphan")
    (vols / orphan / "_data").mkdir(parents=True)
    half = uniq("half")
    run(env.service.create(half))
    record = env.service.get(half)
    record.removing = True
    env.db.put_record("volumes", half, record.to_record())
    # The daemon restarts: the tmpfs stays mounted for the running container.
    service = env.new_service()
    env.service = service
    assert mounted(data)
    assert not (vols / ".tmp-leftover").exists() and not (vols / half).exists()
    assert sorted(v["Name"] for v in service.list_volumes({})["Volumes"]) == sorted([vol, orphan])
    c.state.status = "exited"
    run(service.teardown(c))
    assert not mounted(data)


def test_restart_unmounts_volumes_nobody_uses(env, tmp_path):
    vol = uniq()
    run(env.service.create(vol, "", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}))
    data = env.config.data_root / "volumes" / vol / "_data"
    c = env.create({"Binds": [f"{vol}:/x"]})
    run(env.service.setup(c, tmp_path))  # the container is recorded as not running: it died
    env.service = env.new_service()
    assert not mounted(data)


# ----- the mounts for real ------------------------------------------------------------------
_MOUNT_AND_PROBE = r"""
import json, os, sys
from pathlib import Path
from berth.runtime import linux
from berth.runtime.mounts import mount_entry
rootfs, entries, probes = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
for entry in entries:
    mount_entry(rootfs, rootfs, entry)
out = {}
for path in probes:
    target = rootfs / path.lstrip("/")
    st = os.statvfs(target)
    try:
        (target / "probe").write_text("x")
        written = "ok"
    except OSError as e:
        written = os.strerror(e.errno)
    out[path] = {"written": written, "ro": bool(st.f_flag & os.ST_RDONLY),
                 "noexec": bool(st.f_flag & os.ST_NOEXEC), "mode": oct(os.stat(target).st_mode & 0o7777)}
print(json.dumps(out))
"""


def test_mounts_work_in_a_mount_namespace(env, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    vol = uniq()
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    c = env.create({"Binds": [f"{vol}:/data:ro", f"{host}:/h", f"{vol}:/rw"], "Tmpfs": {"/tmp": ""},
                    "Mounts": [{"Type": "bind", "Source": str(host), "Target": "/hro", "ReadOnly": True}]})
    mounts = run(env.service.setup(c, rootfs))
    probes = ["/data", "/rw", "/h", "/hro", "/tmp"]
    result = subprocess.run(
        ["unshare", "--mount", sys.executable, "-c", _MOUNT_AND_PROBE, str(rootfs),
         json.dumps([m.to_oci() for m in mounts]), json.dumps(probes)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    out = json.loads(result.stdout)
    assert out["/data"]["written"] == "Read-only file system" and out["/data"]["ro"]
    assert out["/rw"]["written"] == "ok" and not out["/rw"]["ro"]
    assert out["/h"]["written"] == "ok" and (host / "probe").exists()
    assert out["/hro"]["written"] == "Read-only file system"
    assert out["/tmp"] == {"written": "ok", "ro": False, "noexec": True, "mode": "0o1777"}
    assert (env.config.data_root / "volumes" / vol / "_data" / "probe").exists()
    assert not mounted(rootfs / "tmp")  # everything stayed inside the namespace
