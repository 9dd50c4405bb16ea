"""Issue #6 acceptance: named and anonymous volumes, bind mounts, tmpfs, read-only containers.

One test per acceptance line, its docstring quoting the line (``test_line1_...`` to
``test_line6_...``), then one per rule the issue lists beside them (``--volumes-from``, image
``VOLUME``, ``rm -v``, ``volume prune``, commit, diff, cp, local driver options). Every expected
value (texts, modes, mount options, what diff and commit show) was read from dockerd 20.10 running
the same commands. The tests share the session's berthd and remove what they create.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.daemon_fixture import BERTH

IMAGE_DOCKERFILE = """FROM busybox
RUN mkdir -p /app /data/sub /vol && echo image > /app/img.txt && echo d > /data/sub/f && echo top > /data/top \\
 && echo v > /vol/seed && chown -R 1234:5678 /data && chmod 0710 /data && chmod 0640 /data/sub/f
VOLUME /vol
"""
EROFS = "Read-only file system"


def uniq(prefix: str = "va") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Session:
    """The shared berthd plus what a test made there (removed by the ``d`` fixture)."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.root: Path = daemon.root
        self.containers: list[str] = []

    def cli(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.daemon.cli(*args, **kw)

    def ok(self, *args: str, **kw) -> str:
        return self.daemon.ok(*args, **kw)

    def named(self, prefix: str = "vc") -> str:
        """A unique container name, removed (with its anonymous volumes) after the test."""
        name = uniq(prefix)
        self.containers.append(name)
        return name

    def volumes(self) -> set[str]:
        return set(self.ok("volume", "ls", "-q").split())

    def container_names(self) -> set[str]:
        return set(self.ok("ps", "-a", "--format", "{{.Names}}").split())

    def data(self, volume: str) -> Path:
        return self.root / "volumes" / volume / "_data"

    def mounts(self, container: str) -> dict[str, dict]:
        points = json.loads(self.ok("inspect", "-f", "{{json .Mounts}}", container))
        return {p["Destination"]: p for p in points}


@pytest.fixture
def d(shared_daemon):
    session = Session(shared_daemon)
    before = session.volumes()
    yield session
    for name in session.containers:
        shared_daemon.cli("rm", "-f", "-v", name)
    for name in session.volumes() - before:
        shared_daemon.cli("volume", "rm", "-f", name)


@pytest.fixture(scope="module")
def image(shared_daemon, tmp_path_factory):
    """An image with ``/app/img.txt``, ``/data`` (owner 1234:5678, mode 0710, ``sub/f`` mode
    0640, ``top``) and ``VOLUME /vol`` holding ``seed``."""
    context = tmp_path_factory.mktemp("vacc-context")
    (context / "Dockerfile").write_text(IMAGE_DOCKERFILE)
    tag = f"{uniq('vacc')}:latest"
    shared_daemon.ok("build", "-q", "-t", tag, str(context))
    yield tag
    shared_daemon.cli("rmi", "-f", tag)


# ----- the acceptance lines ---------------------------------------------------------------------
def test_line1_seed_examples(d, image, tmp_path):
    """1. The seed's examples: `volume create my-vol`; `run -d --name devtest --mount
    source=my-vol,target=/app` (created on first use when absent); a bind mount of `$(pwd)/code`
    to `/app` replaces the image's /app; the `readonly` option blocks writes with EROFS."""
    my_vol = uniq("my-vol-")
    assert d.ok("volume", "create", my_vol) == f"{my_vol}\n"
    assert d.ok("volume", "ls", "--filter", f"name={my_vol}").splitlines() == [
        "DRIVER    VOLUME NAME", f"local     {my_vol}"]
    [info] = json.loads(d.ok("volume", "inspect", my_vol))
    assert {k: v for k, v in info.items() if k != "CreatedAt"} == {
        "Driver": "local", "Labels": {}, "Mountpoint": str(d.data(my_vol)), "Name": my_vol,
        "Options": {}, "Scope": "local"}
    assert d.ok("volume", "rm", my_vol) == f"{my_vol}\n"

    absent, devtest = uniq("myvol2-"), d.named("devtest-")
    assert absent not in d.volumes()
    d.ok("run", "-d", "--name", devtest, "--mount", f"source={absent},target=/app", image, "sleep", "60")
    assert absent in d.volumes()
    assert d.mounts(devtest)["/app"] == {
        "Type": "volume", "Name": absent, "Source": str(d.data(absent)), "Destination": "/app",
        "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    d.ok("exec", devtest, "sh", "-c", "echo written > /app/new")
    assert (d.data(absent) / "new").read_text() == "written\n"
    assert (d.data(absent) / "img.txt").read_text() == "image\n"  # copy-up of the image's /app

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "main.py").write_text("print('hi')\n")
    for flag in ('-v "$(pwd)/code:/app"', '--mount type=bind,source="$(pwd)"/code,target=/app'):
        # through a shell, as the seed writes it: $(pwd) is the test's directory
        bound = subprocess.run(f"{BERTH} run --rm {flag} {image} ls -A /app", shell=True, cwd=tmp_path,
                               env=d.daemon.env, capture_output=True, text=True, timeout=60)
        assert (bound.returncode, bound.stdout) == (0, "main.py\n"), bound.stderr

    host_ro = d.cli("run", "--rm", "--mount", f"type=bind,source={tmp_path}/code,target=/app,readonly", image,
                    "touch", "/app/x")
    vol_ro = d.cli("run", "--rm", "--mount", f"source={absent},target=/app,readonly", image, "touch", "/app/x")
    for result in (host_ro, vol_ro):
        assert (result.returncode, result.stderr) == (1, f"touch: /app/x: {EROFS}\n")
    assert not (tmp_path / "code" / "x").exists() and not (d.data(absent) / "x").exists()



def _wait_gone(d: Session, container: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while container in d.container_names():
        assert time.monotonic() < deadline, f"{container} was not removed"
        time.sleep(0.1)


def test_line2_named_volume_outlives_containers_anonymous_goes_with_rm(d, image):
    """2. Data written to a named volume survives `rm` of the container and is seen by the next
    one; an anonymous volume is removed with `--rm`; a named one is not."""
    name, writer = uniq(), d.named()
    d.ok("run", "--name", writer, "-v", f"{name}:/data", image, "sh", "-c", "echo kept > /data/note")
    d.ok("rm", "-v", writer)
    assert name in d.volumes()
    assert d.ok("run", "--rm", "-v", f"{name}:/data", image, "cat", "/data/note") == "kept\n"

    auto = d.named()
    d.ok("run", "-d", "--rm", "--name", auto, "-v", "/anon", "-v", f"{name}:/data", image, "sleep", "60")
    points = d.mounts(auto)
    anonymous = {points["/anon"]["Name"], points["/vol"]["Name"]}  # -v /anon and the image's VOLUME
    assert anonymous <= d.volumes() and all(len(n) == 64 for n in anonymous)
    d.ok("kill", auto)
    _wait_gone(d, auto)
    left = d.volumes()
    assert not anonymous & left and name in left
    assert (d.data(name) / "note").read_text() == "kept\n"


def test_line3_copy_up_once_and_nocopy(d, image):
    """3. Copy-up: an image with files (and an owner and mode) at /data, mounted with an empty new
    volume there, shows them in the volume; a second mount of that volume does not copy again;
    `nocopy` copies nothing."""
    name = uniq()
    assert d.ok("run", "--rm", "-v", f"{name}:/data", image, "ls", "-A", "/data") == "sub\ntop\n"
    data = d.data(name)
    owner_mode = [(os.stat(p).st_uid, os.stat(p).st_gid, stat.S_IMODE(os.stat(p).st_mode))
                  for p in (data, data / "sub", data / "sub" / "f", data / "top")]
    assert owner_mode == [(1234, 5678, 0o710), (1234, 5678, 0o755), (1234, 5678, 0o640), (1234, 5678, 0o644)]
    assert (data / "sub" / "f").read_text() == "d\n"

    # A volume with content is never copied into again: changes and deletions stay.
    d.ok("run", "--rm", "-v", f"{name}:/data", image, "sh", "-c", "echo mine > /data/top; rm -r /data/sub")
    assert d.ok("run", "--rm", "-v", f"{name}:/data", image, "sh", "-c", "ls -A /data; cat /data/top") == \
        "top\nmine\n"
    # Nor is it for the same container's next start, even after the volume was emptied.
    again = d.named()
    d.ok("create", "--name", again, "-v", f"{name}:/data", image, "ls", "-A", "/data")
    d.ok("run", "--rm", "-v", f"{name}:/data", image, "sh", "-c", "rm -rf /data/* /data/.[!.]*")
    assert d.ok("start", "-a", again) == ""

    for flag in (["-v", f"{uniq()}:/data:nocopy"], ["--mount", f"source={uniq()},target=/data,volume-nocopy"]):
        volume = flag[1].split(":")[0] if flag[0] == "-v" else flag[1].split(",")[0].split("=")[1]
        assert d.ok("run", "--rm", *flag, image, "ls", "-A", "/data") == ""
        st = os.stat(d.data(volume))
        assert (list(d.data(volume).iterdir()), st.st_uid, stat.S_IMODE(st.st_mode)) == ([], 0, 0o755)


@pytest.mark.parametrize("tmpfs", [["--tmpfs", "/tmp"], ["--mount", "type=tmpfs,target=/tmp"]])
def test_line4_read_only_rootfs_with_tmpfs(d, image, tmpfs):
    """4. `--read-only` with `--tmpfs /tmp`: writes to / fail, writes to /tmp work; tmpfs default
    mode and options as above (mode 1777, `noexec,nosuid,nodev`)."""
    script = ('touch /x; echo "root=$?"; echo hi > /tmp/f && cat /tmp/f; stat -c "%a %U:%G" /tmp; '
              'grep " /tmp " /proc/mounts; grep " / " /proc/mounts | cut -d" " -f4 | cut -d, -f1; '
              'cp /bin/busybox /tmp/bb; /tmp/bb true; echo "exec=$?"')
    out = d.cli("run", "--rm", "--read-only", *tmpfs, image, "sh", "-c", script)
    assert out.stdout.splitlines() == [
        "root=1", "hi", "1777 root:root", "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0", "ro", "exec=126"]
    assert out.stderr == f"touch: /x: {EROFS}\nsh: /tmp/bb: Permission denied\n"


def _docker_cli(d: Session):
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not installed")

    def docker(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", d.daemon.host, *args], capture_output=True, text=True, timeout=60)
    return docker


def test_line5_docker_cli_drives_the_same_flows(d, image, tmp_path):
    """5. The real docker CLI and docker-py drive the same flows (`volume create/ls/inspect/rm`,
    `run -v`, `--mount`) — the docker CLI half."""
    docker = _docker_cli(d)
    name = uniq("cli")
    assert docker("volume", "create", "--label", "by=cli", name).stdout == f"{name}\n"
    assert docker("volume", "ls", "--filter", f"name={name}").stdout.splitlines() == [
        "DRIVER    VOLUME NAME", f"local     {name}"]
    assert docker("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Mountpoint}}", name).stdout == \
        f"{name} local map[by:cli] {d.data(name)}\n"
    wrote = docker("run", "--rm", "-v", f"{name}:/data", image, "sh", "-c", "echo cli > /data/f; ls -A /data")
    assert (wrote.returncode, wrote.stdout) == (0, "f\nsub\ntop\n"), wrote.stderr
    read = docker("run", "--rm", "--mount", f"source={name},target=/data,readonly", image, "sh", "-c",
                  "cat /data/f; touch /data/g")
    assert (read.returncode, read.stdout, read.stderr) == (1, "cli\n", f"touch: /data/g: {EROFS}\n")
    (tmp_path / "host.txt").write_text("host\n")
    bound = docker("run", "--rm", "-v", f"{tmp_path}:/app:ro", "--mount",
                   f"type=bind,source={tmp_path},target=/app2", image, "sh", "-c",
                   "cat /app/host.txt; echo x > /app2/back; touch /app/no")
    assert (bound.stdout, bound.stderr) == ("host\n", f"touch: /app/no: {EROFS}\n")
    assert (tmp_path / "back").read_text() == "x\n"
    holder = d.named()
    assert docker("create", "--name", holder, "-v", f"{name}:/data", image, "true").returncode == 0
    busy = docker("volume", "rm", name)
    assert busy.returncode == 1 and f"remove {name}: volume is in use - [" in busy.stderr
    assert docker("rm", holder).returncode == 0
    assert (docker("volume", "rm", name).stdout, name in d.volumes()) == (f"{name}\n", False)


def test_line5_docker_py_drives_the_same_flows(d, image, tmp_path):
    """5. The real docker CLI and docker-py drive the same flows (`volume create/ls/inspect/rm`,
    `run -v`, `--mount`) — the docker-py half."""
    docker = pytest.importorskip("docker")
    from docker.types import Mount

    client = docker.DockerClient(base_url=d.daemon.host)
    name = uniq("py")
    try:
        volume = client.volumes.create(name=name, labels={"by": "py"})
        assert [v.name for v in client.volumes.list(filters={"name": name})] == [name]
        assert client.volumes.get(name).attrs["Mountpoint"] == str(d.data(name))
        out = client.containers.run(image, ["sh", "-c", "echo py > /data/f; ls -A /data"], remove=True,
                                    volumes={name: {"bind": "/data", "mode": "rw"}})
        assert out == b"f\nsub\ntop\n"
        ro = [Mount("/data", name, type="volume", read_only=True)]
        assert client.containers.run(image, ["cat", "/data/f"], mounts=ro, remove=True) == b"py\n"
        with pytest.raises(docker.errors.ContainerError) as refused:
            client.containers.run(image, ["touch", "/data/g"], mounts=ro, remove=True)
        assert EROFS.encode() in refused.value.stderr
        (tmp_path / "host.txt").write_text("host\n")
        binds = [Mount("/app", str(tmp_path), type="bind")]
        assert client.containers.run(image, ["cat", "/app/host.txt"], mounts=binds, remove=True) == b"host\n"
        holder = client.containers.create(image, ["true"], volumes=[f"{name}:/data"])
        with pytest.raises(docker.errors.APIError) as busy:
            volume.remove()
        assert busy.value.status_code == 409 and f"remove {name}: volume is in use" in str(busy.value)
        holder.remove(v=True)
        volume.remove()
        assert name not in d.volumes()
    finally:
        client.close()


BAD_INPUT = [
    (["--mount", "type=bind,source=rel/dir,target=/x"],
     "Error response from daemon: invalid mount config for type \"bind\": invalid mount path: 'rel/dir' "
     "mount path must be absolute"),
    (["--mount", "type=volume,source=NEW"],
     'invalid argument "type=volume,source=NEW" for "--mount" flag: target is required'),
    (["--mount", "type=volume,source=NEW,target=/x,bogus=1"],
     "invalid argument \"type=volume,source=NEW,target=/x,bogus=1\" for \"--mount\" flag: unexpected key "
     "'bogus' in 'bogus=1'"),
    (["--mount", "type=nope,target=/x"],
     'Error response from daemon: invalid mount config for type "nope": mount type unknown'),
    (["--mount", "source=NEW,target=/x,volume-opt=foo=bar"],
     'Error response from daemon: create NEW: invalid option: "foo"'),
    (["-v", "NEW:/x:bogus"], "Error response from daemon: invalid mode: bogus"),
    (["-v", "NEW:x"], "Error response from daemon: invalid volume specification: 'NEW:x': invalid mount config "
                      "for type \"volume\": invalid mount path: 'x' mount path must be absolute"),
]
#: Refused when the container starts, as dockerd does: ``run`` had created the container and the
#: named volume it asked for; ``--rm`` removes the container and its anonymous volumes only.
AT_START = [(["--tmpfs", "/x:bogus=1"], 'Error response from daemon: invalid tmpfs option ["bogus" "1"]')]


@pytest.mark.parametrize("args,message,at_start",
                         [(*case, False) for case in BAD_INPUT] + [(*case, True) for case in AT_START])
def test_line6_bad_input_is_refused_and_changes_nothing(d, image, args, message, at_start):
    """6. Bad input: a relative source with `--mount type=bind`, a missing target, an unknown
    option, removing a volume in use — each a clear error, nothing changed. (A bad ``--tmpfs``
    option is found at start, as dockerd finds it: the named volume ``run`` made stays.)"""
    new, other = uniq(), uniq()
    args = [a.replace("NEW", new) for a in args]
    volumes, containers = d.volumes(), d.container_names()
    result = d.cli("run", "--rm", "-v", f"{other}:/other", *args, image, "true")
    assert (result.returncode, result.stdout) == (125, "")
    assert message.replace("NEW", new) in result.stderr
    made = {other} if at_start else set()
    assert (d.volumes(), d.container_names()) == (volumes | made, containers)


def test_line6_missing_target_through_the_api(d, image):
    """6. ... a missing target ... — the Engine API answers 400 with dockerd's text when a
    client (docker-py here) sends a mount without one."""
    docker = pytest.importorskip("docker")
    from docker.types import Mount

    client = docker.DockerClient(base_url=d.daemon.host)
    volumes, containers = d.volumes(), d.container_names()
    try:
        with pytest.raises(docker.errors.APIError) as err:
            client.containers.create(image, ["true"], mounts=[Mount("", uniq(), type="volume")])
    finally:
        client.close()
    assert err.value.status_code == 400
    assert err.value.explanation == 'invalid mount config for type "volume": field Target must not be empty'
    assert (d.volumes(), d.container_names()) == (volumes, containers)


def test_line6_removing_a_volume_in_use(d, image):
    """6. Bad input: ... removing a volume in use — each a clear error, nothing changed."""
    name, running, stopped = uniq(), d.named(), d.named()
    d.ok("run", "-d", "--name", running, "-v", f"{name}:/data", image, "sh", "-c", "echo v > /data/f; sleep 60")
    d.ok("create", "--name", stopped, "-v", f"{name}:/data", image, "true")
    ids = [d.ok("inspect", "-f", "{{.Id}}", c).strip() for c in (running, stopped)]
    for force in ([], ["-f"]):
        refused = d.cli("volume", "rm", *force, name)
        assert refused.returncode == 1
        users = refused.stderr.removeprefix(f"Error response from daemon: remove {name}: volume is in use - [")
        assert sorted(users.removesuffix("]\n").split()) == sorted(ids), refused.stderr
    assert name not in d.ok("volume", "prune", "-f")
    d.ok("rm", "-f", running)
    refused = d.cli("volume", "rm", name)
    assert refused.stderr == f"Error response from daemon: remove {name}: volume is in use - [{ids[1]}]\n"
    assert name in d.volumes() and (d.data(name) / "f").read_text() == "v\n"


# ----- the other rules ------------------------------------------------------------------
def test_volumes_from_copies_every_mount_and_ro_applies_to_all(d, image, tmp_path):
    """``--volumes-from ID[:ro]``: the other container's volumes (named and anonymous) and binds at
    the same places, read-only with ``:ro``; ``rm -v`` of the source keeps a shared anonymous
    volume until its last user goes."""
    name, source, reader = uniq(), d.named(), d.named()
    (tmp_path / "h").write_text("host\n")
    d.ok("create", "--name", source, "-v", f"{name}:/named", "-v", f"{tmp_path}:/bnd", image, "true")
    out = d.cli("run", "--name", reader, "--volumes-from", f"{source}:ro", image, "sh", "-c",
                "cat /bnd/h; ls -A /named; touch /vol/x /named/x /bnd/x")
    assert out.stdout == "host\n"
    assert out.stderr.splitlines() == [f"touch: /{p}/x: {EROFS}" for p in ("vol", "named", "bnd")]
    theirs, mine = d.mounts(source), d.mounts(reader)
    assert sorted(mine) == ["/bnd", "/named", "/vol"]
    for dest, point in mine.items():
        assert (point["Type"], point.get("Name"), point["Source"], point["Mode"], point["RW"]) == (
            theirs[dest]["Type"], theirs[dest].get("Name"), theirs[dest]["Source"], "", False)
    assert d.ok("run", "--rm", "--volumes-from", source, image, "sh", "-c",
                "touch /vol/x /named/x && echo rw") == "rw\n"
    anonymous = theirs["/vol"]["Name"]
    d.ok("rm", "-v", source)
    assert anonymous in d.volumes()
    d.ok("rm", "-v", reader)
    assert anonymous not in d.volumes() and name in d.volumes()


def test_image_volume_gives_an_anonymous_volume(d, image):
    """VOLUME in an image (and ``-v /path``) gives each container an anonymous volume: 64 hex
    characters, ``Mode`` empty, unless the user mounts something there."""
    first, second, covered = d.named(), d.named(), d.named()
    for c in (first, second):
        d.ok("create", "--name", c, "-v", "/extra", image, "true")
    points = [d.mounts(c) for c in (first, second)]
    for mounts in points:
        assert sorted(mounts) == ["/extra", "/vol"]
        for dest in ("/extra", "/vol"):
            point = mounts[dest]
            assert len(point["Name"]) == 64 and point["Name"] in d.volumes()
            assert {k: v for k, v in point.items() if k not in ("Name", "Source")} == {
                "Type": "volume", "Destination": dest, "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}
    assert points[0]["/vol"]["Name"] != points[1]["/vol"]["Name"]
    assert [p.name for p in d.data(points[0]["/vol"]["Name"]).iterdir()] == ["seed"]  # filled from the image
    named = uniq()
    d.ok("create", "--name", covered, "-v", f"{named}:/vol", image, "true")
    assert [p.get("Name") for p in d.mounts(covered).values()] == [named]


def test_missing_bind_source_created_by_v_refused_by_mount(d, image, tmp_path):
    """``-v /missing/host/dir`` creates the directory (at start); ``--mount type=bind`` refuses it."""
    missing = tmp_path / "missing" / "dir"
    refused = d.cli("run", "--rm", "--mount", f"type=bind,source={missing},target=/m", image, "true")
    assert (refused.returncode, refused.stderr.splitlines()[0]) == (
        125, f'berth: Error response from daemon: invalid mount config for type "bind": bind source path does '
             f"not exist: {missing}.")
    assert not (tmp_path / "missing").exists()
    d.ok("run", "--rm", "-v", f"{missing}:/m", image, "sh", "-c", "echo in > /m/f")
    st = os.stat(missing)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, (missing / "f").read_text()) == (0o755, 0, "in\n")


def test_rm_v_removes_anonymous_volumes_only(d, image):
    """``rm -v`` removes the container's anonymous volumes, never named ones; plain ``rm`` keeps
    them all (left dangling)."""
    name, plain, with_v = uniq(), d.named(), d.named()
    for c in (plain, with_v):
        d.ok("create", "--name", c, "-v", f"{name}:/data", "-v", "/anon", image, "true")
    anon = {c: d.mounts(c)["/anon"]["Name"] for c in (plain, with_v)}
    d.ok("rm", plain)
    dangling = set(d.ok("volume", "ls", "-q", "--filter", "dangling=true").split())
    assert anon[plain] in dangling and name not in dangling
    d.ok("rm", "-v", with_v)
    left = d.volumes()
    assert anon[with_v] not in left and {name, anon[plain]} <= left


def test_volume_prune_removes_unused_volumes_only(d, image):
    """``volume prune`` (API 1.41: named and anonymous) removes the unused volumes matching its
    filter and keeps those a container (running or not) references."""
    label = f"suite={uniq()}"
    unused, used, holder = uniq(), uniq(), d.named()
    d.ok("volume", "create", "--label", label, unused)
    d.ok("create", "--name", holder, "--mount", f"source={used},target=/u,volume-label={label}", image, "true")
    d.ok("run", "--rm", "--mount", f"target=/tmp/anon,volume-label={label}", image, "true")  # removed by --rm
    auto = d.named()
    d.ok("run", "--name", auto, "--mount", f"target=/anon,volume-label={label}", image, "sh", "-c",
         "head -c 5000 /dev/zero > /anon/f")
    anonymous = d.mounts(auto)["/anon"]["Name"]
    d.ok("rm", auto)
    pruned = d.ok("volume", "prune", "-f", "--filter", f"label={label}").splitlines()
    assert pruned[0] == "Deleted Volumes:" and sorted(pruned[1:3]) == sorted([unused, anonymous])
    assert pruned[3:] == ["", "Total reclaimed space: 5kB"]
    assert used in d.volumes() and not {unused, anonymous} & d.volumes()


def test_commit_never_captures_volume_content(d, image, tmp_path):
    """``commit`` keeps what the container wrote to its own filesystem, never what it wrote into
    volumes, binds or tmpfs: the mount points stay, empty (dockerd 20.10 likewise)."""
    writer, committed = d.named(), f"{uniq('vcommit')}:latest"
    d.ok("run", "-d", "--name", writer, "-v", f"{uniq()}:/data", "-v", "/vol2", "--tmpfs", "/tm", "-v",
         f"{tmp_path}:/bnd", image, "sh", "-c",
         "mkdir -p /data/x /vol/y /vol2/z /tm/q /bnd/qq; touch /newfile; echo ready > /ready; sleep 60")
    _wait_for_file(d, writer, "/ready")
    d.ok("commit", writer, committed)
    try:
        listing = d.ok("run", "--rm", committed, "sh", "-c", "ls -A /data /vol /vol2 /tm /bnd; ls /newfile")
        assert listing == "/bnd:\n\n/data:\nsub\ntop\n\n/tm:\n\n/vol:\nseed\n\n/vol2:\n/newfile\n"
        assert json.loads(d.ok("inspect", "-f", "{{json .Config.Volumes}}", committed)) == {"/vol": {}, "/vol2": {}}
    finally:
        d.cli("rmi", "-f", committed)


def _wait_for_file(d: Session, container: str, path: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while d.cli("exec", container, "test", "-e", path).returncode != 0:
        assert time.monotonic() < deadline, f"{path} never appeared in {container}"
        time.sleep(0.1)


def test_diff_leaves_mounted_paths_out(d, image, tmp_path):
    """``diff`` shows the mount points the runtime created (``A /bnd``...) as dockerd 20.10 does,
    and nothing written under volumes, binds or tmpfs mounts; ``/data`` and ``/vol`` came with
    the image."""
    writer = d.named()
    d.ok("run", "-d", "--name", writer, "-v", f"{uniq()}:/data", "-v", "/vol2", "--tmpfs", "/tm", "-v",
         f"{tmp_path}:/bnd", image, "sh", "-c",
         "mkdir -p /data/x /vol/y /vol2/z /tm/q /bnd/qq; touch /newfile; mkdir /newdir; sleep 60")
    deadline = time.monotonic() + 15
    while "A /newdir" not in (changes := d.ok("diff", writer)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # dockerd prints these in no fixed order (a Go map): compare as a set
    assert set(changes.splitlines()) == {"A /bnd", "A /newdir", "A /newfile", "A /tm", "A /vol2"}


def test_cp_into_and_out_of_volumes(d, image, tmp_path):
    """``cp`` writes into a volume (running or created container, the image content copied at
    create already there), reads out of it, and refuses a read-only bind with dockerd's text."""
    src = tmp_path / "in.txt"
    src.write_text("copied\n")
    name, created, running = uniq(), d.named(), d.named()
    d.ok("create", "--name", created, "-v", f"{name}:/data", image, "true")
    d.ok("cp", str(src), f"{created}:/data/in.txt")
    d.ok("cp", str(src), f"{created}:/vol/in.txt")
    assert sorted(p.name for p in d.data(name).iterdir()) == ["in.txt", "sub", "top"]
    anonymous = d.mounts(created)["/vol"]["Name"]
    assert (d.data(anonymous) / "in.txt").read_text() == "copied\n"
    d.ok("run", "-d", "--name", running, "-v", f"{name}:/data", "-v", f"{tmp_path}:/ro:ro", "--read-only",
         image, "sleep", "60")
    d.ok("cp", str(src), f"{running}:/data/again.txt")
    assert d.ok("exec", running, "cat", "/data/again.txt") == "copied\n"
    out = tmp_path / "out"
    out.mkdir()
    d.ok("cp", f"{running}:/data/in.txt", str(out))
    assert (out / "in.txt").read_text() == "copied\n"
    refused = d.cli("cp", str(src), f"{running}:/ro/x")
    assert (refused.returncode, refused.stderr) == (1, "Error response from daemon: mounted volume is marked "
                                                       "read-only\n")
    assert not (tmp_path / "x").exists()


def test_local_driver_options_with_containers(d, image, tmp_path):
    """Local driver options: ``-o type=tmpfs -o device=tmpfs -o o=size=1m,uid=1000`` mounts a
    tmpfs while containers use the volume (content gone after); ``-o type=none -o o=bind -o
    device=/path`` shows and writes the host directory; a bad ``o`` fails at start with dockerd's text."""
    tmpfs_vol, bind_vol, bad = uniq(), uniq(), uniq()
    d.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,uid=1000", tmpfs_vol)
    (tmp_path / "f").write_text("host\n")
    d.ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={tmp_path}", bind_vol)
    out = d.ok("run", "--rm", "-v", f"{tmpfs_vol}:/t", "-v", f"{bind_vol}:/b", image, "sh", "-c",
               'stat -f -c "%T %b %S" /t; stat -c "%u %a" /t; stat -c %i /b; cat /b/f; echo new > /b/n; '
               "echo x > /t/x")
    assert out.splitlines() == ["tmpfs 256 4096", "1000 1777", str(os.stat(tmp_path).st_ino), "host"]
    assert (tmp_path / "n").read_text() == "new\n"
    assert d.ok("run", "--rm", "-v", f"{tmpfs_vol}:/t", image, "ls", "-A", "/t") == ""
    assert not os.path.ismount(d.data(tmpfs_vol)) and not os.path.ismount(d.data(bind_vol))
    # cp with a stopped container goes through the driver's mount too (dockerd mounts for cp)
    stopped = d.named()
    d.ok("create", "--name", stopped, "-v", f"{bind_vol}:/b", image, "true")
    d.ok("cp", str(tmp_path / "f"), f"{stopped}:/b/copied")
    assert (tmp_path / "copied").read_text() == "host\n" and not (d.data(bind_vol) / "copied").exists()
    assert "n" in d.ok("cp", f"{stopped}:/b/n", "-")
    assert not os.path.ismount(d.data(bind_vol))
    d.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=bogus", bad)
    detail = f"failed to mount local volume: mount tmpfs:{d.data(bad)}, data: bogus: invalid argument"
    # Over /data (in the image) the mount for the copy-up fails at create; over /t, at start.
    at_create = d.cli("run", "--rm", "-v", f"{bad}:/data", image, "true")
    assert (at_create.returncode, at_create.stderr) == (
        125, f"berth: Error response from daemon: {detail}.\nSee 'berth run --help'.\n")
    at_start = d.cli("run", "--rm", "-v", f"{bad}:/t", image, "true")
    assert (at_start.returncode, at_start.stderr) == (
        125, f"berth: Error response from daemon: error while mounting volume '{d.data(bad)}': {detail}.\n")
