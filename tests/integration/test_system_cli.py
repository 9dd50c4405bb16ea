"""``berth version`` and ``berth info`` print what the docker CLI prints for the same daemon (berthd
and dockerd), apart from the client's own version lines; berthd's ``/info`` ID is stable."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.daemon_fixture import BERTH
from tests.integration.test_images_acceptance import DOCKER, docker, same_output

CLIENT_LINES = re.compile(r"^ (Version|API version|Go version|Git commit|Built): .*$", re.M)


def berth_cli(host: str, *args: str) -> str:
    result = subprocess.run([BERTH, "-H", host, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def without_client_version(text: str) -> str:
    """The output with the client section's version lines blanked (berth is not docker 28) and the
    debug figures that change from one call to the next."""
    client, sep, server = text.partition("\nServer:")
    server = re.sub(r"^  (File Descriptors|Goroutines|System Time): .*$", r"  \1:", server, flags=re.M)
    # docker walks the runtimes map in Go's random order; berth sorts them
    server = re.sub(r"^ Runtimes: (.*)$", lambda m: " Runtimes: " + " ".join(sorted(m.group(1).split())), server,
                    flags=re.M)
    return CLIENT_LINES.sub(r" \1:", client) + sep + server


@pytest.mark.compat
@pytest.mark.parametrize("command", ["version", "info"])
def test_version_and_info_as_docker_prints_them(shared_daemon, dockerd, command):
    if DOCKER is None:
        pytest.skip("no docker CLI")
    for host in (shared_daemon.host, dockerd.host):
        theirs, mine = same_output(lambda h=host: docker(h, command).stdout,
                                   lambda h=host: berth_cli(h, command))
        assert re.sub(r" {2,}", " ", without_client_version(mine)) == \
            re.sub(r" {2,}", " ", without_client_version(theirs)), host
    assert "\n Engine:\n  Version:          0.1.0\n" in berth_cli(shared_daemon.host, "version")


def test_info_id_is_stable_across_restarts(daemon):
    first = daemon.ok("info", "--format", "{{.ID}}").strip()
    assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", first)
    daemon.restart()
    assert daemon.ok("info", "--format", "{{.ID}}").strip() == first
    assert (daemon.root / "engine-id").read_text().strip() == first


@pytest.mark.parametrize("template, expected", [
    ("{{.Server.APIVersion}}", "1.41"),
    ("{{.Server.MinAPIVersion}}", "1.24"),
    ("{{.Server.Os}}/{{.Server.Arch}}", None),
])
def test_version_format_uses_dockers_field_names(shared_daemon, template, expected):
    """``version --format`` fields are docker's types.Version Go names (``APIVersion``, not the
    JSON ``ApiVersion``), as scripts and docker's own docs use them."""
    out = shared_daemon.ok("version", "--format", template).strip()
    assert out == expected if expected else "<no value>" not in out
    if DOCKER is not None:
        theirs = subprocess.run([DOCKER, "-H", shared_daemon.host, "version", "--format", template],
                                capture_output=True, text=True).stdout.strip()
        assert theirs == out
