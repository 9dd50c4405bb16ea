"""The volume service on a real data root: volumes, local driver mounts, copy-up, container mounts.

Every test gets its own data root under pytest's tmp_path; mounts made there are undone in the
fixture's teardown even when the test fails.
"""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from pathlib import Path

import pytest

from berth.containers.model import Container
from berth.daemon.config import DaemonConfig
from berth.daemon.events import EventBus
from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.store.db import Database
from berth.volumes.service import VolumeService
from tests.daemon_fixture import unmount_under


def run(coro):
    return asyncio.run(coro)


def mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


class Env:
    """A VolumeService over a fresh data root, with a fake container list."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = DaemonConfig(data_root=root / "data")
        self.config.data_root.mkdir(parents=True)
        self.db = Database(self.config.data_root / "berth.db")
        self.events = EventBus()
        self.containers: list[Container] = []
        self.service = self.new_service()

    def new_service(self) -> VolumeService:
        service = VolumeService(self.config, self.db, self.events)
        service.bind_containers(lambda: list(self.containers), self.resolve)
        run(service.start())
        return service

    def resolve(self, ref: str) -> Container:
        for c in self.containers:
            if ref in (c.id, c.name) or c.id.startswith(ref):
                return c
        raise NotFound(f"No such container: {ref}")

    def container(self, host_config: dict | None = None, volumes: dict | None = None) -> Container:
        cid = uuid.uuid4().hex * 2
        return Container(cid, f"c{cid[:8]}", "2026-01-01T00:00:00Z", "busybox", "sha256:" + "0" * 64,
                         {"Volumes": volumes}, dict(host_config or {}))

    def create(self, host_config: dict | None = None, volumes: dict | None = None) -> Container:
        """validate + store, as the container service's create does."""
        c = self.container(host_config, volumes)
        run(self.service.validate(c, {}))
        self.containers.append(c)
        return c

    def remove(self, c: Container, anonymous: bool) -> None:
        run(self.service.remove_container(c, anonymous))
        self.containers.remove(c)

    def volume_events(self) -> list[tuple[str, str, dict]]:
        return [(e.action, e.actor_id, e.attributes) for e in self.events._history if e.type == "volume"]


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    try:
        yield e
    finally:
        unmount_under(tmp_path)
        e.db.close()


def uniq(prefix: str = "v") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# ----- volumes ------------------------------------------------------------------------------
def test_create_inspect_list_remove(env):
    name = uniq()
    created = run(env.service.create(name, "", None, {"k": "v"}))
    data = env.config.data_root / "volumes" / name / "_data"
    assert created["Name"] == name and created["Mountpoint"] == str(data) and created["Labels"] == {"k": "v"}
    assert created["Driver"] == "local" and created["Scope"] == "local" and created["Options"] is None
    assert data.is_dir()
    assert stat.S_IMODE(os.stat(data.parent).st_mode) == 0o701
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o755
    assert env.service.inspect(name) == created
    # docker's create is idempotent: the existing volume comes back unchanged.
    again = run(env.service.create(name, "local", {"type": "tmpfs", "device": "tmpfs"}, {"k": "other"}))
    assert again == created
    listed = env.service.list_volumes({})
    assert listed == {"Volumes": [created], "Warnings": None}
    run(env.service.remove(name))
    assert not data.parent.exists()
    with pytest.raises(NotFound) as err:
        env.service.inspect(name)
    assert err.value.message == f"get {name}: no such volume"
    with pytest.raises(NotFound) as err:
        run(env.service.remove(name))
    assert err.value.message == f"get {name}: no such volume"
    run(env.service.remove(name, force=True))
    assert [(a, n) for a, n, _ in env.volume_events()] == [("create", name), ("create", name), ("destroy", name)]


def test_records_survive_a_restart(env):
    name = uniq()
    created = run(env.service.create(name, "", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, {}))
    assert env.new_service().inspect(name) == created


def test_create_without_name_is_random_and_not_anonymous(env):
    created = run(env.service.create())
    assert len(created["Name"]) == 64 and created["Labels"] is None
    assert run(env.service.prune({}, anonymous_only=True))["VolumesDeleted"] == []


@pytest.mark.parametrize("name,driver,options,error,message", [
    ("a", "", {}, InvalidParameter,
     "create a: volume name is too short, names should be at least two alphanumeric characters"),
    ("-ab", "", {}, InvalidParameter,
     'create -ab: "-ab" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
     "are allowed. If you intended to pass a host directory, use absolute path"),
    ("okname", "", {"foo": "bar"}, InvalidParameter, 'create okname: invalid option: "foo"'),
    ("okname", "", {"o": "size=1m"}, InvalidParameter, 'create okname: missing required option: "device"'),
    ("okname", "", {"device": "/tmp"}, InvalidParameter, 'create okname: missing required option: "type"'),
    ("okname", "nope", {}, NotFound, 'create okname: error looking up volume plugin nope: plugin "nope" not found'),
])
def test_create_errors(env, name, driver, options, error, message):
    with pytest.raises(error) as err:
        run(env.service.create(name, driver, options, {}))
    assert err.value.message == message
    assert env.service.list_volumes({})["Volumes"] == []
    assert not (env.config.data_root / "volumes" / name).exists()


def test_list_filters_dangling(env):
    used, free = uniq("used"), uniq("free")
    run(env.service.create(free))
    c = env.create({"Binds": [f"{used}:/data"]})
    names = lambda f: [v["Name"] for v in env.service.list_volumes(f)["Volumes"]]  # noqa: E731
    assert names({"dangling": ["true"]}) == [free]
    assert names({"dangling": ["false"]}) == [used]
    assert names({"name": ["used"]}) == [used]
    env.remove(c, anonymous=True)
    assert sorted(names({"dangling": ["true"]})) == sorted([used, free])


def test_in_use_volume_cannot_be_removed(env):
    name = uniq()
    c = env.create({"Binds": [f"{name}:/data"]})
    for force in (False, True):
        with pytest.raises(Conflict) as err:
            run(env.service.remove(name, force))
        assert err.value.message == f"remove {name}: volume is in use - [{c.id}]"
    assert run(env.service.prune({}, anonymous_only=False))["VolumesDeleted"] == []
    env.remove(c, anonymous=True)
    assert env.service.inspect(name)["Name"] == name  # named volumes survive rm -v
    run(env.service.remove(name))


def test_prune_follows_api_version(env):
    named, labelled = uniq("named"), uniq("lab")
    run(env.service.create(named))
    run(env.service.create(labelled, labels={"keep": "no"}))
    c = env.create(volumes={"/anon": {}})
    anon = c.mounts[0]["Name"]
    (env.config.data_root / "volumes" / named / "_data" / "f").write_bytes(b"x" * 1000)
    env.remove(c, anonymous=False)
    assert env.service.inspect(anon)["Labels"] == {"com.docker.volume.anonymous": ""}
    # API >= 1.42: anonymous only, unless all=true.
    assert run(env.service.prune({}, anonymous_only=True)) == {"VolumesDeleted": [anon], "SpaceReclaimed": 0}
    assert run(env.service.prune({"label": ["keep=no"]}, anonymous_only=True))["VolumesDeleted"] == []
    assert run(env.service.prune({"label": ["keep=no"], "all": ["true"]}, anonymous_only=True)) == {
        "VolumesDeleted": [labelled], "SpaceReclaimed": 0}
    # API 1.41: every unused volume; label! excludes.
    assert run(env.service.prune({"label!": ["nothing"]}, anonymous_only=False)) == {
        "VolumesDeleted": [named], "SpaceReclaimed": 1000}
    assert env.service.list_volumes({})["Volumes"] == []


# ----- local driver options -----------------------------------------------------------------
def test_tmpfs_volume_mounted_while_used(env, tmp_path):
    name = uniq()
    run(env.service.create(name, "local", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}))
    data = env.config.data_root / "volumes" / name / "_data"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    a, b = env.create({"Binds": [f"{name}:/x"]}), env.create({"Binds": [f"{name}:/y:ro"]})
    try:
        mounts_a = run(env.service.setup(a, rootfs))
        assert mounted(data) and os.stat(data).st_uid == 1000
        assert [m.to_oci() for m in mounts_a] == [
            {"destination": "/x", "type": "bind", "source": str(data), "options": ["rbind"]}]
        mounts_b = run(env.service.setup(b, rootfs))
        assert mounts_b[0].options == ("rbind", "ro")
        run(env.service.teardown(a))
        assert mounted(data)
        run(env.service.teardown(b))
        run(env.service.teardown(b))  # idempotent
        assert not mounted(data)
    finally:
        run(env.service.teardown(a))
        run(env.service.teardown(b))
    assert [(act, attrs) for act, _, attrs in env.volume_events() if act in ("mount", "unmount")] == [
        ("mount", {"container": a.id, "destination": "/x", "driver": "local", "propagation": "",
                   "read/write": "true"}),
        ("mount", {"container": b.id, "destination": "/y", "driver": "local", "propagation": "",
                   "read/write": "false"}),
        ("unmount", {"container": a.id, "driver": "local"}),
        ("unmount", {"container": b.id, "driver": "local"}),
    ]


def test_bind_volume_option_mounts_host_dir(env, tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    (device / "keep.txt").write_text("host data")
    name = uniq()
    run(env.service.create(name, "", {"type": "none", "o": "bind", "device": str(device)}))
    data = env.config.data_root / "volumes" / name / "_data"
    rootfs = tmp_path / "rootfs"
    (rootfs / "x").mkdir(parents=True)
    (rootfs / "x" / "image.txt").write_text("image")
    c = env.create({"Binds": [f"{name}:/x"]})
    try:
        run(env.service.setup(c, rootfs))
        assert mounted(data) and (data / "keep.txt").read_text() == "host data"
        assert not (data / "image.txt").exists()  # not empty: no copy-up
    finally:
        run(env.service.teardown(c))
    assert not mounted(data)
    env.remove(c, anonymous=True)
    run(env.service.remove(name))
    assert (device / "keep.txt").read_text() == "host data"


@pytest.mark.parametrize("options,detail", [
    ({"type": "none", "o": "bind", "device": "/nonexistent/berth-zz"},
     "mount /nonexistent/berth-zz:{data}, flags: 0x1000: no such file or directory"),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,bogus"},
     "mount tmpfs:{data}, data: size=1m,bogus: invalid argument"),
])
def test_volume_mount_failure(env, tmp_path, options, detail):
    name = uniq()
    run(env.service.create(name, "", options))
    data = env.config.data_root / "volumes" / name / "_data"
    c = env.create({"Binds": [f"{name}:/x"]})
    with pytest.raises(SystemError_) as err:
        run(env.service.setup(c, tmp_path))
    assert err.value.message == (f"error while mounting volume '{data}': failed to mount local volume: "
                                 + detail.format(data=data))
    assert not mounted(data)
    # The failed start left no user behind: the next one mounts again (and fails again).
    with pytest.raises(SystemError_):
        run(env.service.setup(c, tmp_path))


def test_unbound_service_reads_stored_containers(env):
    # Before the container service binds itself, references come from the containers table.
    name = uniq()
    c = env.create({"Binds": [f"{name}:/data"]})
    env.db.put_record("containers", c.id, c.to_record(), name=c.name)
    try:
        service = VolumeService(env.config, env.db, env.events)
        run(service.start())
        with pytest.raises(Conflict) as err:
            run(service.remove(name))
        assert err.value.message == f"remove {name}: volume is in use - [{c.id}]"
    finally:
        env.db.delete_record("containers", c.id)
