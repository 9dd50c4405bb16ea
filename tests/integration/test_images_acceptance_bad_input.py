"""Issue #2, acceptance line 6: bad input to ``import`` and ``load``.

"A truncated or corrupt tar for import/load, a manifest naming a missing layer, a layer tar with
``../`` names, absolute or escaping symlinks and hard links — each gives a clear error, exit code
non-zero, writes nothing outside the snapshot, and leaves no partial image, tag or blob."

A symlink is refused when it is used to escape (an entry written through it): on its own, one
that climbs above the root is kept, as dockerd keeps it (its unpack runs in a chroot, where
``..`` stops at the root), so images with such links survive ``save``/``load``.

Each case runs the real ``berth`` CLI against one fresh berthd and compares the content store,
the snapshots directory and the database before and after; a sentinel directory outside the data
root must stay empty.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from tests.integration.images_support import (
    directory,
    docker_archive,
    file,
    hardlink,
    image_config,
    layer_tar,
    oci_archive,
    sha256,
    store_state,
    symlink,
    tree_files,
)

GOOD = layer_tar([file("etc/hello", "hello\n"), directory("d"), file("d/f", "x")])
GOOD2 = layer_tar([file("second", "2")])


def import_cases(outside: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (root filesystem tar for ``berth import``, text the error must contain)."""
    busybox_like = layer_tar([file(f"bin/f{i}", "x" * 2000) for i in range(20)])
    corrupt = bytearray(busybox_like)
    corrupt[512 * 5 + 148:512 * 5 + 156] = b"99999999"  # a header's checksum field
    out = str(outside)
    return {
        "truncated": (busybox_like[:len(busybox_like) // 2 + 700], "unexpected end of data"),
        "corrupt header": (bytes(corrupt), "unpacking layer"),
        "garbage": (b"\x00\x01garbage" * 300, "unpacking layer"),
        "dotdot name": (layer_tar([file("ok", "x"), file(f"../../../../../..{out}/dotdot", "x")]),
                        "outside of the layer root"),
        "absolute hard link": (layer_tar([file("ok", "x"), hardlink("link", "/etc/passwd")]), "invalid hardlink"),
        "escaping hard link": (layer_tar([file("ok", "x"), hardlink("link", "../../../../../etc/passwd")]),
                               "invalid hardlink"),
        # a symlink climbing above the root is kept, as dockerd keeps it (test_climbing_symlinks.py);
        # writing through it ends at the layer's root, where its target does not exist
        "escaping symlink written through": (
            layer_tar([symlink("evil", f"../../../../../../..{out}"), file("evil/through", "x")]),
            "no such file or directory"),
        "absolute symlink written through": (
            layer_tar([symlink("evil", out), file("evil/through", "x")]), "no such file or directory"),
        "dangling symlink dir written through": (
            layer_tar([symlink("evil", "missing/dir"), file("evil/a/b", "x")]), "no such file or directory"),
    }


def load_cases(outside: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (archive for ``berth load``, text the error must contain)."""
    config = image_config([GOOD])
    good = docker_archive(config, [GOOD], ["loadbad:good"])
    two = image_config([GOOD, GOOD2])
    layer_name = sha256(GOOD)[7:] + "/layer.tar"
    dotdot = layer_tar([file("ok", "x"), file(f"../../../../../..{outside}/dotdot", "x")])
    through = layer_tar([symlink("evil", str(outside)), file("evil/through", "x")])
    bad_hard = layer_tar([file("ok", "x"), hardlink("link", "../../../../etc/shadow")])
    return {
        "truncated archive": (good[:len(good) // 2 + 100], "invalid tar archive"),
        "corrupt archive": (b"\xff" * 1024 + good[1024:], "invalid tar archive"),
        "manifest naming a missing layer": (docker_archive(config, [GOOD], ["loadbad:x"], skip={layer_name}),
                                            f"{layer_name} is missing from the archive"),
        "manifest naming a missing config": (
            docker_archive(config, [GOOD], ["loadbad:x"], skip={sha256(config)[7:] + ".json"}), "missing"),
        "no manifest": (docker_archive(config, [GOOD], ["loadbad:x"], skip={"manifest.json"}),
                        "no manifest.json"),
        "layer not matching the config": (docker_archive(image_config([GOOD2]), [GOOD], ["loadbad:x"]),
                                          "invalid diffID for layer 0"),
        "second layer has ../ names": (docker_archive(image_config([GOOD, dotdot]), [GOOD, dotdot], ["loadbad:x"]),
                                       "outside of the layer root"),
        "symlink written through": (docker_archive(image_config([GOOD, through]), [GOOD, through], ["loadbad:x"]),
                                    "no such file or directory"),
        "escaping hard link": (docker_archive(image_config([bad_hard]), [bad_hard], ["loadbad:x"]),
                               "invalid hardlink"),
        "second image broken": (_two_images(good, two), "missing from the archive"),
        "oci layout missing blob": (_oci_without_layer(config), "missing from the archive"),
    }


def _two_images(good: bytes, second_config: bytes) -> bytes:
    """An archive whose first image is fine and whose second names a layer it does not carry."""
    import io
    import json
    import tarfile

    src = tarfile.open(fileobj=io.BytesIO(good))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        manifest = []
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json":
                manifest = json.loads(data)
                continue
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        config_name = sha256(second_config)[7:] + ".json"
        info = tarfile.TarInfo(config_name)
        info.size = len(second_config)
        out.addfile(info, io.BytesIO(second_config))
        manifest.append({"Config": config_name, "RepoTags": ["loadbad:second"],
                         "Layers": [manifest[0]["Layers"][0], "nothere/layer.tar"]})
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _oci_without_layer(config: bytes) -> bytes:
    import io
    import tarfile

    full = oci_archive(config, [GOOD], "docker.io/library/loadbad:oci")
    src = tarfile.open(fileobj=io.BytesIO(full))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member in src.getmembers():
            if member.name != "blobs/sha256/" + sha256(GOOD)[7:]:
                out.addfile(member, src.extractfile(member))
    return buf.getvalue()


@pytest.fixture
def outside(tmp_path):
    """A directory outside the data root that bad layers aim at; must stay empty."""
    path = tmp_path / f"outside-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def _check_refused(daemon, args: list[str], data: bytes, expect: str, outside: Path) -> None:
    before = store_state(daemon.root)
    result = daemon.cli(*args, input=data)
    err = result.stderr.decode(errors="replace")
    assert result.returncode != 0, (args, result.stdout, err)
    assert expect in err, err
    assert store_state(daemon.root) == before
    assert tree_files(outside) == set()


def test_bad_import_input_is_refused_and_leaves_nothing(bdaemon, outside):
    """Line 6 for ``berth import``: truncated, corrupt, ``../`` names, absolute/escaping hard links,
    escaping symlinks and writes through symlinks."""
    existing = bdaemon.ok("images", "-q", "--no-trunc")
    for name, (data, expect) in import_cases(outside).items():
        try:
            _check_refused(bdaemon, ["import", "-", f"importbad:{name.replace(' ', '-')}"], data, expect, outside)
        except AssertionError as exc:
            raise AssertionError(f"import case {name!r}: {exc}") from None
    assert bdaemon.ok("images", "-q", "--no-trunc") == existing


def test_bad_load_input_is_refused_and_leaves_nothing(bdaemon, outside):
    """Line 6 for ``berth load``: truncated/corrupt archives, manifests naming missing files, layers
    with ``../`` names, escaping links, writes through symlinks, a broken second image."""
    bdaemon.ok("tag", "busybox", "loadbad:good")  # a load that fails must not move this tag
    for name, (data, expect) in load_cases(outside).items():
        try:
            _check_refused(bdaemon, ["load"], data, expect, outside)
        except AssertionError as exc:
            raise AssertionError(f"load case {name!r}: {exc}") from None
    busybox_id = bdaemon.ok("inspect", "-f", "{{.Id}}", "busybox").strip()
    assert bdaemon.ok("inspect", "-f", "{{.Id}}", "loadbad:good").strip() == busybox_id


def test_good_inputs_still_load(daemon):
    """The same helpers give archives that load (so the refusals above are about the bad parts)."""
    config = image_config([GOOD, GOOD2])
    out = daemon.cli("load", input=docker_archive(config, [GOOD, GOOD2], ["loadgood:two"]))
    assert out.returncode == 0 and out.stdout == b"Loaded image: loadgood:two\n"
    assert daemon.ok("inspect", "-f", "{{.Id}}", "loadgood:two").strip() == sha256(config)
    out = daemon.cli("load", input=oci_archive(image_config([GOOD]), [GOOD], "docker.io/library/loadgood:oci"))
    assert out.returncode == 0 and out.stdout == b"Loaded image: loadgood:oci\n"



def test_startup_removes_what_a_crash_mid_unpack_leaves(bdaemon):
    """berthd killed (SIGKILL) while ``load`` or ``import`` unpacks a layer leaves a half-filled
    ``snapshots/.tmp-*`` directory; the restarted daemon removes it (DESIGN: a crash leaves a state
    that startup can repair), and a dangling ``l/`` short link with it."""
    before = store_state(bdaemon.root)
    bdaemon.stop(signal.SIGKILL)
    snapshots = bdaemon.root / "snapshots"
    half = snapshots / f".tmp-crash{uuid.uuid4().hex[:6]}" / "fs" / "usr" / "lib"
    half.mkdir(parents=True)
    (half / "libpartial.so").write_bytes(b"\0" * 4096)
    (snapshots / "l" / "DANGLING").symlink_to("../nowhere/fs")
    bdaemon.start()
    assert store_state(bdaemon.root) == before
