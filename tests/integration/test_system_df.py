"""``system df``: the daemon's /system/df document and both CLIs' summary table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid


def test_system_df_counts_images_containers_and_volumes(bdaemon):
    name = f"df-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("volume", "create", f"{name}-vol")
    bdaemon.ok("run", "-d", "--name", name, "-v", f"{name}-vol:/data", "busybox", "sleep", "60")
    try:
        raw = json.loads(subprocess.run(
            ["curl", "-s", "--unix-socket", bdaemon.sock, "http://x/v1.41/system/df"],
            capture_output=True, text=True, check=True).stdout)
        assert raw["LayersSize"] > 0
        assert [i["Containers"] for i in raw["Images"]] == [1]
        assert raw["Images"][0]["SharedSize"] == 0  # one image: nothing shared
        assert [c["Names"] for c in raw["Containers"]] == [[f"/{name}"]]
        assert raw["Volumes"][0]["UsageData"]["RefCount"] == 1
        lines = bdaemon.ok("system", "df").splitlines()
        assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert lines[1].split()[:3] == ["Images", "1", "1"]
        assert lines[1].endswith("0B (0%)")  # the only image is in use
        assert lines[2].split()[:3] == ["Containers", "1", "1"]
        assert lines[3].split()[:4] == ["Local", "Volumes", "1", "1"]
        if shutil.which("docker"):
            theirs = subprocess.run(["docker", "-H", bdaemon.host, "system", "df"], capture_output=True,
                                    text=True, env=bdaemon.env)
            assert theirs.returncode == 0, theirs.stderr
            assert theirs.stdout.splitlines() == lines
    finally:
        bdaemon.cli("rm", "-f", name)
        bdaemon.cli("volume", "rm", f"{name}-vol")


def test_system_df_format(bdaemon):
    out = bdaemon.ok("system", "df", "--format", "{{.Type}}:{{.TotalCount}}:{{.Active}}").splitlines()
    assert out == ["Images:1:0", "Containers:0:0", "Local Volumes:0:0", "Build Cache:0:0"]


def test_system_df_leaves_build_steps_out(bdaemon):
    """Images as ``docker images`` lists them (dockerd's ``Images(all=false)``): the untagged step
    images of a build are not counted, and ``SharedSize`` counts layers shared between listed
    images (busybox's layer, by busybox and the built image)."""
    tag = f"df-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("build", "-q", "-t", tag, "-", input="FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n")
    try:
        assert len(bdaemon.ok("images", "-a", "-q").split()) == 3  # busybox, the first RUN, the result
        raw = json.loads(subprocess.run(
            ["curl", "-s", "--unix-socket", bdaemon.sock, "http://x/v1.41/system/df"],
            capture_output=True, text=True, check=True).stdout)
        shared = {tuple(i["RepoTags"]): i["SharedSize"] for i in raw["Images"]}
        busybox_size = next(i["Size"] for i in raw["Images"] if i["RepoTags"] == ["busybox:latest"])
        assert shared == {("busybox:latest",): busybox_size, (f"{tag}:latest",): busybox_size}
        assert bdaemon.ok("system", "df", "--format", "{{.TotalCount}}").splitlines()[0] == "2"
    finally:
        bdaemon.cli("rmi", tag)


def test_system_df_verbose_tables(bdaemon):
    """``system df -v``: the four sections with docker's titles; one row per image (first tag),
    container (no virtual size) and volume (its link count); the same text as docker's CLI prints
    from the same daemon."""
    name = f"dfv-{uuid.uuid4().hex[:8]}"
    bdaemon.ok("volume", "create", f"{name}-vol")
    bdaemon.ok("run", "-d", "--name", name, "-v", f"{name}-vol:/data", "busybox", "sh", "-c",
               "echo 12345 > /data/f; sleep 60")
    try:
        out = bdaemon.ok("system", "df", "-v")
        sections = out.split("\n\n")
        assert [s.strip() for s in sections[::2][:4]] == [
            "Images space usage:", "Containers space usage:", "Local Volumes space usage:", "Build cache usage: 0B"]
        images, containers, volumes, cache = (s.splitlines() for s in sections[1::2])
        assert images[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "SHARED", "SIZE",
                                     "UNIQUE", "SIZE", "CONTAINERS"]
        image_id = bdaemon.ok("image", "inspect", "-f", "{{.Id}}", "busybox").strip()[7:19]
        assert images[1].split()[:3] == ["busybox", "latest", image_id] and images[1].split()[-1] == "1"
        assert containers[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "LOCAL", "VOLUMES", "SIZE",
                                         "CREATED", "STATUS", "NAMES"]
        cells = re.split(r"\s{2,}", containers[1])
        assert cells[1:5] == ["busybox", '"sh -c echo 12345 > …"', "1", "0B"]  # 1 local volume, no virtual size
        assert cells[-1] == name and cells[-2].startswith("Up ")
        assert volumes[0].split() == ["VOLUME", "NAME", "LINKS", "SIZE"]
        assert [v.split() for v in volumes[1:]] == [[f"{name}-vol", "1", "6B"]]
        assert cache[0].split() == ["CACHE", "ID", "CACHE", "TYPE", "SIZE", "CREATED", "LAST", "USED", "USAGE",
                                    "SHARED"] and len(cache) == 1
        if shutil.which("docker"):
            theirs = subprocess.run(["docker", "-H", bdaemon.host, "system", "df", "-v"], capture_output=True,
                                    text=True, env=bdaemon.env)
            assert theirs.returncode == 0, theirs.stderr
            assert theirs.stdout == out
    finally:
        bdaemon.cli("rm", "-f", name)
        bdaemon.cli("volume", "rm", f"{name}-vol")
