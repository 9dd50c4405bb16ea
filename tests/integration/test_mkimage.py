"""contrib/mkimage end to end (issue #7, "Base images"): the images imported into a real berthd
with a sensible CMD, a second run that imports nothing and takes seconds, and clear errors when
debootstrap, the mirror or a package is not there.

The Debian root filesystem comes from the shared cache (``/var/cache/berth-mkimage``): on a cold
machine the first test pays for debootstrap (about a minute here). The only traffic off the
machine is the host's own apt mirror, reached by debootstrap and apt on the host.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from contrib.mkimage import aptsources, baseimages, debs, mkdebian, rootfs

from tests.daemon_fixture import BERTH

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_base_images_are_imported_once(daemon):
    """busybox:latest and debian:bookworm land with their CMD (and PATH for Debian); a second run
    finds them up to date, imports nothing and takes seconds."""
    said: list[str] = []
    try:
        tags = baseimages.ensure_images(["busybox", "debian"], host=daemon.host, cli=BERTH, say=said.append)
    except rootfs.MkImageError as err:
        pytest.skip(f"the Debian base image cannot be made on this machine: {err}")
    assert tags == ["busybox:latest", "debian:bookworm"]
    assert [line for line in said if "importing" in line] == ["baseimages: importing busybox:latest",
                                                              "baseimages: importing debian:bookworm"]
    config = daemon.ok("image", "inspect", "-f", "{{json .Config.Cmd}} {{json .Config.Env}}", "debian:bookworm")
    assert config.strip() == '["bash"] ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
    assert daemon.ok("run", "--rm", "debian:bookworm", "cat", "/etc/debian_version").startswith("12.")
    started = time.monotonic()
    again = subprocess.run([sys.executable, str(ROOT / "contrib/mkimage/baseimages.py"), "-H", daemon.host,
                            "--berth", BERTH, "busybox", "debian"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 10
    assert again.stdout.splitlines() == ["baseimages: busybox:latest is up to date",
                                         "baseimages: debian:bookworm is up to date", "busybox:latest",
                                         "debian:bookworm"]


def test_debian_image_leaves_the_host_out(tmp_path: Path):
    """The cached tar holds no host identity (hostname, resolvers), no package lists or .debs,
    nothing under /dev, /proc, /sys; it carries Debian's container tweaks."""
    tar = rootfs.Cache().path(mkdebian.cache_name("bookworm"))
    if not tar.exists():
        pytest.skip("debian:bookworm has not been made on this machine yet")
    with tarfile.open(tar) as archive:
        members = {m.name: m for m in archive.getmembers()}
        hostname = archive.extractfile(members["etc/hostname"]).read()  # type: ignore[union-attr]
        resolv = archive.extractfile(members["etc/resolv.conf"]).read()  # type: ignore[union-attr]
    assert hostname == resolv == b""
    assert not [n for n in members if n.startswith(("dev/", "proc/", "sys/", "var/lib/apt/lists/")) and
                not n.endswith(("/lock", "/partial"))]
    assert not [n for n in members if n.endswith(".deb")]
    assert {"usr/sbin/policy-rc.d", "etc/dpkg/dpkg.cfg.d/docker-apt-speedup", "usr/bin/bash"} <= set(members)


def test_missing_debootstrap_is_a_clear_error(tmp_path: Path):
    done = subprocess.run([sys.executable, str(ROOT / "contrib/mkimage/mkdebian.py"), "--cache-dir", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"}, timeout=60)
    if "no Debian mirror" in done.stderr:
        pytest.skip("this host's apt sources name no Debian mirror")
    assert (done.returncode, done.stderr) == (1, "mkdebian: debootstrap is not installed (apt-get install debootstrap)\n")
    assert not list(tmp_path.glob("*.tar"))


@pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is not installed")
def test_unreachable_mirror_is_a_clear_error(tmp_path: Path):
    """A mirror that does not answer (a closed port on loopback): debootstrap's error, the mirror
    named, and nothing left in the cache but the lock."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = aptsources.AptSource("deb", f"http://127.0.0.1:{port}/debian", ("bookworm",), ("main",),
                                  origin="/etc/apt/sources.list")
    with pytest.raises(rootfs.MkImageError) as err:
        mkdebian.debian_tar("bookworm", cache=rootfs.Cache(tmp_path), source=source, say=lambda _line: None)
    assert str(err.value) == (
        f"debootstrap failed (exit status 1):\n  E: Failed getting release file http://127.0.0.1:{port}/debian/"
        f"dists/bookworm/Release\nthe mirror http://127.0.0.1:{port}/debian (from /etc/apt/sources.list) is "
        "unreachable: check the network and the host's apt sources")
    assert [p.name for p in tmp_path.iterdir()] == [".debian-bookworm-minbase-v1.tar.lock"]


def test_unknown_package_is_a_clear_error(tmp_path: Path):
    """apt on the host (its own package lists, no download) refuses a package that does not exist."""
    tar = rootfs.Cache().path(mkdebian.cache_name("bookworm"))
    if not tar.exists():
        pytest.skip("debian:bookworm has not been made on this machine yet")
    with pytest.raises(rootfs.MkImageError) as err:
        debs.fetch_debs(["no-such-package-berth"], tmp_path / "debs", tar, rootfs.Cache(tmp_path / "cache"))
    assert str(err.value).startswith("apt-get -s -q failed:\n  E: Unable to locate package no-such-package-berth\n")
    assert "run apt-get update on the host" in str(err.value)
    assert list((tmp_path / "debs").iterdir()) == []


def test_host_mirror_is_read_from_the_host_sources():
    try:
        source = aptsources.host_mirror("bookworm")
    except aptsources.NoMirror:
        pytest.skip("this host's apt sources name no Debian mirror")
    assert source.kind == "deb" and source.origin.startswith("/etc/apt/")
    assert source.uri.split(":", 1)[0] in ("http", "https", "file")
