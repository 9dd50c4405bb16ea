"""diff, cp (archive), export and commit through a real berthd, with the docker CLI and docker-py.
Expected answers are dockerd 20.10's. Files on the host live under pytest's tmp_path; containers,
volumes and images are named after the test run and removed at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid

import pytest

from berth.runtime import cgroups

docker = pytest.importorskip("docker")

DOCKER = "/usr/local/bin/docker"
SETUP = "mkdir /tmp/d && echo hi > /tmp/d/f && ln -s /tmp/d/f /tmp/lnk && ln -s d /tmp/dlnk && rm /bin/ls"


def cli(d, *args: str, cwd: str | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    return subprocess.run([DOCKER, "-H", d.host, *args], input=input, capture_output=True, env=env, cwd=cwd,
                          timeout=60)


@pytest.fixture
def client(bdaemon):
    if not os.path.exists(DOCKER):
        pytest.skip("docker CLI not installed")
    c = docker.DockerClient(base_url=bdaemon.host, version="1.41")
    c.made = {"containers": [], "images": [], "volumes": []}
    yield c
    for container in c.made["containers"]:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
    for image in c.made["images"]:
        try:
            c.images.remove(image, force=True)
        except docker.errors.NotFound:
            pass
    for volume in c.made["volumes"]:
        try:
            c.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass
    c.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def box(client, script: str = SETUP, **kw):
    """A running busybox that ran ``script`` and then sleeps; waits for the script to finish (its
    marker is on /dev/shm, a tmpfs: outside diff, export and commit)."""
    container = client.containers.run("busybox", ["sh", "-c", f"{script}; touch /dev/shm/ready; sleep 600"],
                                      name=unique("cp"), detach=True, **kw)
    client.made["containers"].append(container)
    deadline = time.monotonic() + 20
    while container.exec_run(["test", "-e", "/dev/shm/ready"]).exit_code != 0:
        assert time.monotonic() < deadline, "setup script did not finish"
        time.sleep(0.1)
    return container


def _tar(entries: dict[str, bytes | None]) -> bytes:
    """A tar of name -> content (None: a directory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_000_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _rootfs_mounted(container_id: str) -> bool:
    with open("/proc/self/mounts") as f:
        return any(f"{container_id}/rootfs" in line.split()[1] for line in f)


# ----- diff ----------------------------------------------------------------------------------------
def test_diff(client, bdaemon, tmp_path):
    c = box(client)
    result = cli(bdaemon, "diff", c.name)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode().splitlines() == ["C /bin", "D /bin/ls", "C /tmp", "A /tmp/d", "A /tmp/d/f",
                                                   "A /tmp/dlnk", "A /tmp/lnk"]
    assert client.api.diff(c.id)[:2] == [{"Path": "/bin", "Kind": 0}, {"Path": "/bin/ls", "Kind": 2}]
    volume = unique("vol")
    client.made["volumes"].append(volume)
    bind = tmp_path / "bind"
    bind.mkdir()
    mounted = box(client, "echo x > /data/f; echo y > /mnt/host/g; touch /root/newf",
                  volumes={volume: {"bind": "/data"}, str(bind): {"bind": "/mnt/host"}})
    assert client.api.diff(mounted.id) == [  # mount points show as dockerd shows them, their content does not
        {"Path": "/data", "Kind": 1}, {"Path": "/mnt", "Kind": 1}, {"Path": "/mnt/host", "Kind": 1},
        {"Path": "/root", "Kind": 0}, {"Path": "/root/newf", "Kind": 1}]
    created = client.containers.create("busybox", ["true"], name=unique("cp"))
    client.made["containers"].append(created)
    assert client.api.diff(created.id) is None
    missing = cli(bdaemon, "diff", "cp-no-such-container")
    assert missing.stderr == b"Error response from daemon: No such container: cp-no-such-container\n"


# ----- cp out --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "names", "stat"), [
    ("/tmp/d", ["d", "d/f"], {"name": "d", "size": 4096, "mode": 2147484141, "linkTarget": ""}),
    ("/tmp/d/.", [".", "./f"], {"name": ".", "size": 4096, "mode": 2147484141, "linkTarget": ""}),
    ("/tmp/d/f", ["f"], {"name": "f", "size": 3, "mode": 420, "linkTarget": ""}),
    ("/tmp/lnk", ["lnk"], {"name": "lnk", "size": 8, "mode": 134218239, "linkTarget": "/tmp/d/f"}),
    ("/tmp/dlnk/", ["dlnk", "dlnk/f"], {"name": "dlnk", "size": 4096, "mode": 2147484141, "linkTarget": ""}),
])
def test_get_archive(client, path, names, stat):
    c = box(client, SETUP + " && chmod 755 /tmp/d && chmod 644 /tmp/d/f")
    chunks, info = c.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert [n.rstrip("/") or "." for n in tar.getnames()] == names
    del info["mtime"]
    assert info == stat


def test_cp_from_container_with_the_cli(client, bdaemon, tmp_path):
    c = box(client)
    for args in ([f"{c.name}:/tmp/d", "."], [f"{c.name}:/tmp/d/f", "copy"], [f"{c.name}:/tmp/dlnk", "dl"],
                 ["-L", f"{c.name}:/tmp/lnk", "followed"], [f"{c.name}:/etc/hostname", "hostname"]):
        result = cli(bdaemon, "cp", *args, cwd=str(tmp_path))
        assert (result.returncode, result.stderr) == (0, b""), args
    assert (tmp_path / "d" / "f").read_text() == "hi\n" and (tmp_path / "copy").read_text() == "hi\n"
    assert os.readlink(tmp_path / "dl") == "d" and (tmp_path / "followed").read_text() == "hi\n"
    assert (tmp_path / "hostname").read_text() == c.attrs["Config"]["Hostname"] + "\n"  # the mounted file
    missing = cli(bdaemon, "cp", f"{c.name}:/nope", "x", cwd=str(tmp_path))
    assert (missing.returncode, missing.stderr.decode()) == (
        1, f"Error response from daemon: Could not find the file /nope in container {c.name}\n")
    tarred = cli(bdaemon, "cp", f"{c.name}:/tmp/d", "-")
    with tarfile.open(fileobj=io.BytesIO(tarred.stdout)) as tar:
        assert tar.getnames() == ["d", "d/f"]
    # frozen while its files were read, running again afterwards
    assert not cgroups.is_frozen(f"/berth/{c.id}") and client.containers.get(c.id).status == "running"


def test_head_archive_errors(client):
    c = box(client)
    url = client.api._url("/containers/{0}/archive", c.id)
    for params, status, message in (({"path": "/nope"}, 404, f"Could not find the file /nope in container {c.id}"),
                                    ({"path": ""}, 400, "bad parameter: pathcannot be empty")):
        response = client.api.get(url, params=params)
        assert (response.status_code, response.json()["message"]) == (status, message)
    head = client.api.head(url, params={"path": "/tmp/d/f"})
    stat = json.loads(base64.b64decode(head.headers["X-Docker-Container-Path-Stat"]))
    assert (head.status_code, head.content, stat["name"], stat["size"]) == (200, b"", "f", 3)


# ----- cp in ---------------------------------------------------------------------------------------
def test_put_archive_and_cli_cp_into_container(client, bdaemon, tmp_path):
    volume = unique("vol")
    client.made["volumes"].append(volume)
    c = box(client, volumes={volume: {"bind": "/data"}})
    assert c.put_archive("/tmp", _tar({"new": None, "new/a": b"a\n", "b": b"b\n"}))
    assert c.exec_run(["cat", "/tmp/new/a", "/tmp/b"]).output == b"a\nb\n"
    assert c.put_archive("/tmp/dlnk", _tar({"via-link": b"x"}))             # a link to a directory is followed
    assert c.exec_run(["cat", "/tmp/d/via-link"]).output == b"x"
    assert c.put_archive("/data", _tar({"in-volume": b"v\n"}))
    mountpoint = client.volumes.get(volume).attrs["Mountpoint"]
    assert open(os.path.join(mountpoint, "in-volume")).read() == "v\n"
    (tmp_path / "file").write_text("from host\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "x").write_text("x\n")
    for args in (["file", f"{c.name}:/tmp/"], ["file", f"{c.name}:/tmp/renamed"], ["dir", f"{c.name}:/data/dir"]):
        result = cli(bdaemon, "cp", *args, cwd=str(tmp_path))
        assert (result.returncode, result.stderr) == (0, b""), args
    listing = c.exec_run(["sh", "-c", "cat /tmp/file /tmp/renamed /data/dir/sub/x"]).output
    assert listing == b"from host\nfrom host\nx\n"
    assert open(os.path.join(mountpoint, "dir", "sub", "x")).read() == "x\n"


@pytest.mark.parametrize(("path", "params", "entries", "status", "message"), [
    ("/tmp/d/f", {}, {"x": b""}, 500, "extraction point is not a directory"),
    ("/nodir", {}, {"x": b""}, 404, "Could not find the file /nodir in container {name}"),
    ("/tmp", {"noOverwriteDirNonDir": "true"}, {"x": b"", "d": b"file"}, 500,
     'Error processing tar file(exit status 1): cannot overwrite directory "/tmp/d" with non-directory "/tmp"'),
    ("/tmp", {}, {"x": b"", "../../escape": b""}, 500,
     'Error processing tar file(exit status 1): "../../escape" is outside of "/tmp"'),
])
def test_put_archive_errors_leave_nothing(client, path, params, entries, status, message):
    c = box(client)
    url = client.api._url("/containers/{0}/archive", c.id)
    response = client.api.put(url, params={"path": path, **params}, data=_tar(entries))
    assert (response.status_code, response.json()["message"]) == (status, message.format(name=c.id))
    assert c.exec_run(["test", "-e", "/tmp/x"]).exit_code == 1


def test_put_archive_read_only_and_copy_uid_gid(client, tmp_path):
    ro = box(client, "true", read_only=True, volumes={str(tmp_path): {"bind": "/mnt", "mode": "ro"}})
    for path, message in (("/tmp", "container rootfs is marked read-only"), ("/mnt", "mounted volume is marked read-only")):
        with pytest.raises(docker.errors.APIError) as error:
            ro.put_archive(path, _tar({"x": b""}))
        assert (error.value.status_code, error.value.explanation) == (500, message)
    user = box(client, "true", user="nobody")
    url = client.api._url("/containers/{0}/archive", user.id)
    assert client.api.put(url, params={"path": "/tmp", "copyUIDGID": "1"}, data=_tar({"owned": b""})).ok
    assert user.exec_run(["stat", "-c", "%u:%g", "/tmp/owned"]).output == b"65534:65534\n"


def test_cp_with_a_stopped_container(client, bdaemon, tmp_path):
    c = box(client)
    c.stop(timeout=0)
    assert c.put_archive("/tmp", _tar({"while-stopped": b"s\n"}))
    chunks, info = c.get_archive("/tmp/while-stopped")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.extractfile("while-stopped").read() == b"s\n"
    assert not _rootfs_mounted(c.id)   # mounted for the copy only
    c.start()
    assert c.exec_run(["cat", "/tmp/while-stopped"]).output == b"s\n"


# ----- export --------------------------------------------------------------------------------------
def test_export(client, bdaemon, tmp_path):
    volume = unique("vol")
    client.made["volumes"].append(volume)
    c = box(client, SETUP + " && echo v > /data/v", volumes={volume: {"bind": "/data"}})
    out = tmp_path / "box.tar"
    result = cli(bdaemon, "export", "-o", str(out), c.name)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert {"tmp/d/f", "tmp/lnk", "data", "etc/hosts", ".dockerenv"} <= set(names)
    assert "data/v" not in names and "bin/ls" not in names and names[0] == ".dockerenv"
    c.stop(timeout=0)
    streamed = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        assert tar.getnames() == names
    assert not _rootfs_mounted(c.id)
    missing = cli(bdaemon, "export", "cp-no-such-container")
    assert missing.stderr == b"Error response from daemon: No such container: cp-no-such-container\n"


# ----- commit --------------------------------------------------------------------------------------
def test_commit_then_run_and_history(client, bdaemon):
    volume = unique("vol")
    client.made["volumes"].append(volume)
    c = box(client, SETUP + " && echo in-volume > /data/v", volumes={volume: {"bind": "/data"}})
    tag = unique("img") + ":v1"
    client.made["images"].append(tag)
    since = int(time.time())
    result = cli(bdaemon, "commit", "-m", "from berth", "-a", "tester", "-c", 'CMD ["cat", "/tmp/d/f"]',
                 "-c", "ENV COMMITTED=yes", c.name, tag)
    assert result.returncode == 0, result.stderr
    image_id = result.stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    image = client.images.get(tag)
    assert image.id == image_id
    assert (image.attrs["Comment"], image.attrs["Author"], image.attrs["Config"]["Cmd"]) == (
        "from berth", "tester", ["cat", "/tmp/d/f"])
    assert "COMMITTED=yes" in image.attrs["Config"]["Env"] and image.attrs["Container"] == c.id
    assert client.containers.get(c.id).status == "running"   # paused for the commit only
    ran = client.containers.run(tag, remove=True)
    assert ran == b"hi\n"
    ls = client.containers.run(tag, ["sh", "-c", "ls -a /data; test -e /bin/ls || echo no-ls"], remove=True)
    assert ls == b".\n..\nno-ls\n"   # the mount point is in the image, the volume's content is not
    history = cli(bdaemon, "history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", tag)
    assert history.stdout.decode().splitlines()[0] == f"sh -c {SETUP} && echo in-volume > /data/v; touch /dev/shm/ready; " \
                                                      "sleep 600|from berth"
    events = [e for e in client.events(since=since, until=int(time.time()) + 1, decode=True,
                                       filters={"container": c.id})]
    events = [e for e in events if e["Action"] in ("pause", "commit", "unpause")]
    assert [e["Action"] for e in events] == ["pause", "commit", "unpause"]
    assert events[1]["Actor"]["Attributes"]["imageID"] == image_id
    untagged = client.api.commit(c.id, pause=False)
    client.made["images"].append(untagged["Id"])
    assert client.images.get(untagged["Id"]).attrs["RepoTags"] == []
    for repo, message in (("Bad-Name", "invalid reference format: repository name must be lowercase"),
                          ("x@sha256:" + "a" * 64, "refusing to create a tag with a digest reference")):
        with pytest.raises(docker.errors.APIError) as error:
            client.api.commit(c.id, repository=repo)
        assert (error.value.status_code, error.value.explanation) == (400, message)
    missing = cli(bdaemon, "commit", "cp-no-such-container")
    assert missing.stderr == b"Error response from daemon: No such container: cp-no-such-container\n"


def test_commit_of_an_unchanged_container_adds_no_layer(client):
    created = client.containers.create("busybox", ["true"], name=unique("cp"))
    client.made["containers"].append(created)
    result = client.api.commit(created.id, message="empty")
    client.made["images"].append(result["Id"])
    image = client.images.get(result["Id"])
    parent = client.images.get("busybox")
    assert image.attrs["RootFS"]["Layers"] == parent.attrs["RootFS"]["Layers"]
    assert image.history()[0]["CreatedBy"] == "true" and image.history()[0]["Size"] == 0
