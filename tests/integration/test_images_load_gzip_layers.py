"""``docker load`` of a docker-archive whose layer files are gzipped (go-containerregistry
tarballs, OCI blobs re-used under a ``manifest.json``): dockerd decompresses them
(archive.DecompressStream) and checks the diff IDs of the uncompressed tars; so does berth."""

from __future__ import annotations

import gzip

from tests.integration.images_support import directory, docker_archive, file, image_config, layer_tar, sha256


def test_gzipped_layers_in_a_docker_archive_load(bdaemon):
    raw = [layer_tar([file("etc/one", "1\n"), directory("d")]), layer_tar([file("d/two", "2\n")])]
    config = image_config(raw)
    archive = docker_archive(config, [gzip.compress(layer, mtime=0) for layer in raw], ["gzload:latest"])
    assert bdaemon.ok("load", input=archive) == b"Loaded image: gzload:latest\n"
    assert bdaemon.ok("inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "gzload") == (
        f'{sha256(config)} ["{sha256(raw[0])}","{sha256(raw[1])}"]\n')
    blobs = {p.name for p in (bdaemon.root / "content").rglob("*") if p.is_file()}
    assert not any(sha256(gzip.compress(layer, mtime=0))[7:] in blobs for layer in raw)  # only the tars stay
