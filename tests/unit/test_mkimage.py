"""contrib/mkimage without the network: apt sources parsing and mirror choice, apt's simulation
output, cache names, debootstrap's command line and errors, the rootfs trim and the tar writer."""

from __future__ import annotations

import hashlib
import os
import socket
import tarfile
from pathlib import Path

import pytest
from contrib.mkimage import aptsources, baseimages, debs, mkdebian, rootfs
from contrib.mkimage.aptsources import AptSource

DEB822 = """\
Types: deb deb-src
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
"""


def test_parse_deb822():
    found = aptsources.parse_deb822(DEB822, "debian.sources")
    assert [(s.kind, s.uri, s.suites, s.signed_by) for s in found] == [
        ("deb", "http://mirror.example/debian", ("bookworm",), "/usr/share/keyrings/debian-archive-keyring.gpg"),
        ("deb", "http://mirror.example/debian", ("bookworm-updates",), "/usr/share/keyrings/debian-archive-keyring.gpg"),
        ("deb-src", "http://mirror.example/debian", ("bookworm",), "/usr/share/keyrings/debian-archive-keyring.gpg"),
        ("deb-src", "http://mirror.example/debian", ("bookworm-updates",), "/usr/share/keyrings/debian-archive-keyring.gpg"),
        ("deb", "http://security.example/debian-security", ("bookworm-security",), ""),  # inline key: no path
    ]
    assert found[0].components == ("main", "contrib") and found[0].origin == "debian.sources"


@pytest.mark.parametrize("line, expected", [
    ("deb http://m.example/debian bookworm main", ("deb", "http://m.example/debian", ("bookworm",), ("main",), "")),
    ("deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main non-free  # note",
     ("deb", "http://m.example/debian", ("bookworm",), ("main", "non-free"), "/k.gpg")),
    ("deb [ signed-by=/k.gpg ] file:/srv/mirror bookworm main", ("deb", "file:/srv/mirror", ("bookworm",), ("main",), "/k.gpg")),
    ("deb-src http://m.example/debian bookworm main", ("deb-src", "http://m.example/debian", ("bookworm",), ("main",), "")),
    ("# deb http://commented.example/debian bookworm main", None),
    ("deb http://m.example/debian", None),
    ("rpm http://m.example/ x y", None),
])
def test_parse_one_line(line, expected):
    found = aptsources.parse_one_line(line)
    got = [(s.kind, s.uri, s.suites, s.components, s.signed_by) for s in found]
    assert got == ([expected] if expected else [])


def _src(uri: str, suite: str, components: tuple[str, ...] = ("main",), kind: str = "deb") -> AptSource:
    return AptSource(kind, uri, (suite,), components)


@pytest.mark.parametrize("sources, suite, uri", [
    # The entry naming the suite wins, even after others.
    ([_src("http://sec.example/debian-security", "bookworm-security"), _src("http://a.example/debian", "bullseye"),
      _src("http://b.example/debian", "bookworm")], "bookworm", "http://b.example/debian"),
    # Else the first release suite's mirror (not security, updates or backports).
    ([_src("http://sec.example/debian-security", "trixie-security"), _src("http://u.example/debian", "trixie-updates"),
      _src("http://a.example/debian", "trixie")], "bookworm", "http://a.example/debian"),
    # deb-src, cdrom and entries without main are no use.
    ([_src("http://src.example/debian", "bookworm", kind="deb-src"), _src("cdrom:[Debian]/", "bookworm"),
      _src("http://nf.example/debian", "bookworm", ("non-free",)), _src("https://ok.example/debian", "bookworm")],
     "bookworm", "https://ok.example/debian"),
])
def test_pick_mirror(sources, suite, uri):
    assert aptsources.pick_mirror(sources, suite).uri == uri


def test_pick_mirror_without_a_usable_entry():
    with pytest.raises(aptsources.NoMirror, match="no Debian mirror found in the host's apt sources"):
        aptsources.pick_mirror([_src("http://sec.example/debian-security", "bookworm-security")], "bookworm")


def test_read_host_sources_reads_only_what_apt_reads(tmp_path: Path):
    etc = tmp_path / "etc/apt/sources.list.d"
    etc.mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list").write_text("deb http://one.example/debian bookworm main\n")
    (etc / "b.sources").write_text("Types: deb\nURIs: http://three.example/debian\nSuites: bookworm\n")
    (etc / "a.list").write_text("deb http://two.example/debian bookworm main\n")
    (etc / "c.list.disabled").write_text("deb http://never.example/debian bookworm main\n")
    found = aptsources.read_host_sources(str(tmp_path))
    assert [s.uri for s in found] == ["http://one.example/debian", "http://two.example/debian",
                                      "http://three.example/debian"]


SIMULATION = """\
Reading package lists...
The following NEW packages will be installed:
  cowsay libgdbm6
Inst perl-base [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])
Conf perl-base (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])
Inst libgdbm6 (1.23-3 Debian:12.15/oldstable [amd64])
Inst libc6:i386 (2.36-9+deb12u10 Debian:12.15/oldstable [i386])
Inst tzdata (1:2024a-0+deb12u1 Debian:12.15/oldstable [all])
Inst cowsay (3.03+dfsg2-8 Debian:12.15/oldstable [all])
Conf cowsay (3.03+dfsg2-8 Debian:12.15/oldstable [all])
"""


def test_parse_simulation():
    assert debs.parse_simulation(SIMULATION) == [
        debs.Package("perl-base", "5.36.0-7+deb12u4", "amd64"),
        debs.Package("libgdbm6", "1.23-3", "amd64"),
        debs.Package("libc6", "2.36-9+deb12u10", "i386"),
        debs.Package("tzdata", "1:2024a-0+deb12u1", "all"),
        debs.Package("cowsay", "3.03+dfsg2-8", "all"),
    ]
    assert debs.Package("tzdata", "1:2024a-0+deb12u1", "all").filename == "tzdata_1%3a2024a-0+deb12u1_all.deb"


def test_base_status_reads_the_image_dpkg_status(tmp_path: Path):
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("Package: base-files\nStatus: install ok installed\n")
    tar = tmp_path / "root.tar"
    rootfs.write_rootfs_tar(root, tar)
    assert debs.base_status(tar, tmp_path / "status").read_text().startswith("Package: base-files")
    (root / "var/lib/dpkg/status").unlink()
    rootfs.write_rootfs_tar(root, tar)
    with pytest.raises(rootfs.MkImageError, match="not a Debian root filesystem"):
        debs.base_status(tar, tmp_path / "status")


@pytest.mark.parametrize("include, name", [
    ((), "debian-bookworm-minbase-v1.tar"),
    (("build-essential",), "debian-bookworm-minbase+build-essential-v1.tar"),
    (("b", "a", "b"), "debian-bookworm-minbase+a,b-v1.tar"),
])
def test_cache_name(include, name):
    assert mkdebian.cache_name("bookworm", include) == name
    long_name = mkdebian.cache_name("bookworm", [f"package-{n}" for n in range(10)])
    assert long_name.startswith("debian-bookworm-minbase+h") and len(long_name) < 60


def test_debootstrap_argv(tmp_path: Path):
    keyring = tmp_path / "k.gpg"
    keyring.write_bytes(b"")
    source = AptSource("deb", "http://m.example/debian", ("bookworm",), ("main",), str(keyring))
    assert mkdebian.debootstrap_argv("bookworm", Path("/t"), source, ["make", "gcc"]) == [
        "debootstrap", "--variant=minbase", "--components=main", "--include=gcc,make", f"--keyring={keyring}",
        "bookworm", "/t", "http://m.example/debian"]
    missing = AptSource("deb", "http://m.example/debian", ("bookworm",), signed_by="/no/such.gpg")
    assert "--keyring=/no/such.gpg" not in mkdebian.debootstrap_argv("bookworm", Path("/t"), missing)


def test_debootstrap_failure_is_explained():
    source = AptSource("deb", "http://m.example/debian", ("bookworm",), origin="/etc/apt/sources.list")
    log = "I: Retrieving InRelease\nE: Failed getting release file http://m.example/debian/dists/bookworm/Release\n"
    err = mkdebian._failure(log, 1, source)
    assert str(err) == ("debootstrap failed (exit status 1):\n  E: Failed getting release file "
                        "http://m.example/debian/dists/bookworm/Release\nthe mirror http://m.example/debian (from "
                        "/etc/apt/sources.list) is unreachable: check the network and the host's apt sources")
    other = mkdebian._failure("I: a\nE: Couldn't find these debs: nosuchpkg\n", 1, source)
    assert "unreachable" not in str(other) and "nosuchpkg" in str(other)


def test_finish_rootfs(tmp_path: Path):
    for rel, text in {"etc/hostname": "buildhost\n", "etc/resolv.conf": "nameserver 10.0.0.1\n",
                      "var/cache/apt/archives/x_1_all.deb": "deb", "var/cache/apt/pkgcache.bin": "bin",
                      "var/lib/apt/lists/m_Packages": "pkgs", "var/lib/apt/lists/lock": "",
                      "var/log/bootstrap.log": "log", "etc/debian_version": "12.11\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    mkdebian.finish_rootfs(tmp_path)
    assert (tmp_path / "etc/hostname").read_text() == (tmp_path / "etc/resolv.conf").read_text() == ""
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["etc/debian_version", "etc/dpkg/dpkg.cfg.d/docker-apt-speedup", "etc/hostname",
                    "etc/resolv.conf", "usr/sbin/policy-rc.d", "var/lib/apt/lists/lock"]
    assert os.stat(tmp_path / "usr/sbin/policy-rc.d").st_mode & 0o777 == 0o755


def test_write_rootfs_tar(tmp_path: Path):
    root = tmp_path / "root"
    for rel in ("usr/bin", "dev/pts", "proc/1", "etc"):
        (root / rel).mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"\x7fELF")
    os.chmod(root / "usr/bin/tool", 0o4755)
    os.link(root / "usr/bin/tool", root / "usr/bin/alias")
    os.symlink("usr/bin", root / "bin")
    (root / "dev/null-ish").write_text("")
    os.setxattr(root / "usr/bin/tool", "user.note", b"kept")
    owner = (7, 8) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(root / "etc", *owner)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "etc/ctl.sock"))
    out = tmp_path / "root.tar"
    rootfs.write_rootfs_tar(root, out)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["bin", "dev", "etc", "proc", "usr", "usr/bin", "usr/bin/alias", "usr/bin/tool"]
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    alias, tool = members["usr/bin/alias"], members["usr/bin/tool"]
    assert alias.isreg() and alias.size == 4 and tool.islnk() and tool.linkname == "usr/bin/alias"
    assert alias.mode == 0o4755 and alias.pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert (members["etc"].uid, members["etc"].gid, members["etc"].uname) == (*owner, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "root.tar"]  # no temp file left


def test_cache_workdir_and_tar_digest(tmp_path: Path):
    cache = rootfs.Cache(tmp_path / "cache")
    with cache.lock("x"), cache.workdir("x") as work:
        (work / "f").write_text("scratch")
        kept = work
    assert not kept.exists()
    tar = cache.path("t.tar")
    tar.write_bytes(b"layer")
    digest = baseimages.tar_digest(tar)
    assert digest == rootfs.sha256_file(tar) == "sha256:" + hashlib.sha256(b"layer").hexdigest()
    assert (tmp_path / "cache/t.tar.sha256").read_text() == digest + "\n"


def test_base_image_changes():
    image = baseimages.IMAGES["debian"]
    assert image.tag == "debian:bookworm"
    assert image.changes == ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 'CMD ["bash"]']
    assert baseimages.IMAGES["busybox"].changes == ['CMD ["sh"]']
    assert baseimages.IMAGES["debian-build"].tag == "debian:bookworm-build"
