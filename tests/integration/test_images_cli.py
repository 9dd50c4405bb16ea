"""The image commands through the real ``berth`` CLI and berthd, beyond the acceptance lines:
``images`` arguments, filters and formats, ``history`` flags, ``rmi`` messages (side by side with
docker against dockerd), ``image prune -a``, ``events`` windows, import from a URL, ``save -o``
and ``load -q``."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import stat
import threading
import time

import pytest

from tests.integration.test_images_acceptance import DOCKER, columns, docker, shape, uniq


def test_images_argument_filters_and_formats(shared_daemon, busybox_tar):
    """``images REPO[:TAG]``, every ``--filter``, ``--digests``, ``--format`` table/json/Label, quiet."""
    d, repo = shared_daemon, uniq("cli-")
    try:
        first = d.ok("import", "-c", "LABEL tier=front", str(busybox_tar), f"{repo}:1").strip()
        time.sleep(1.1)  # creation times a second apart, so before/since separate them
        second = d.ok("import", "-c", "LABEL tier=back", "-c", "LABEL com.example.team-name=x", str(busybox_tar),
                      f"{repo}/sub:2").strip()
        d.ok("tag", f"{repo}:1", f"{repo}:1b")

        def rows(*args: str) -> list[list[str]]:
            return [columns(line) for line in d.ok("images", *args).splitlines()[1:]]

        assert [r[:2] for r in rows(repo)] == [[repo, "1"], [repo, "1b"]]
        assert [r[:2] for r in rows(f"{repo}:1b")] == [[repo, "1b"]]
        assert [r[:2] for r in rows(f"{repo}/*")] == [[f"{repo}/sub", "2"]]
        assert rows(f"{repo}:nope") == []
        assert [r[:2] for r in rows("-f", f"reference={repo}*")] == [[repo, "1"], [repo, "1b"]]  # "*" stops at "/"
        ref = ["-f", f"reference={repo}*", "-f", f"reference={repo}/*"]  # values of one filter are ORed
        assert [r[1] for r in rows(*ref, "-f", "label=tier=back")] == ["2"]
        assert [r[1] for r in rows(*ref, "-f", "label=tier")] == ["2", "1", "1b"]
        assert [r[1] for r in rows(*ref, "-f", f"before={repo}/sub:2")] == ["1", "1b"]
        assert [r[1] for r in rows(*ref, "-f", f"since={repo}:1")] == ["2"]
        assert [r[1] for r in rows(*ref, "-f", "dangling=false")] == ["2", "1", "1b"]
        assert rows(*ref, "-f", "dangling=true") == []
        assert [r[1] for r in rows(*ref, "-f", "until=1970-01-02T00:00:00Z")] == []
        bad = d.cli("images", "-f", "dangling=1")
        assert (bad.returncode, bad.stderr) == (1, "Error response from daemon: Invalid filter 'dangling=[1]'\n")
        bad = d.cli("images", "-f", "bogus=1")
        assert (bad.returncode, bad.stderr) == (1, "Error response from daemon: Invalid filter 'bogus'\n")
        bad = d.cli("images", "-f", "label")
        assert bad.returncode == 125 and bad.stderr.startswith(
            'invalid argument "label" for "-f, --filter" flag: bad format of filter (expected name=value)\n')

        lines = d.ok("images", "--digests", repo).splitlines()
        assert columns(lines[0]) == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
        assert columns(lines[1])[:4] == [repo, "1", "<none>", first[7:19]]
        assert d.ok("images", "-q", repo) == f"{first[7:19]}\n{first[7:19]}\n"
        assert d.ok("images", "-q", "--no-trunc", f"{repo}:1") == first + "\n"
        assert d.ok("images", "-q", "--format", "{{.Tag}}", repo) == "1\n1b\n"  # --format wins over -q
        # image rows have no Label method (docker: "can't evaluate field Label"); a header alone has
        label_format = 'table {{.Tag}}\t{{.Label "com.example.team-name"}}'
        assert d.ok("images", "--format", label_format, f"{repo}:none") == "TAG       team name\n"
        bad = d.cli("images", "--format", label_format, f"{repo}/sub")
        assert bad.returncode == 1 and "at <.Label>: can't evaluate field Label" in bad.stderr
        assert d.ok("images", "--format", "table", f"{repo}:1").splitlines()[0].split() == \
            ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
        docs = [json.loads(line) for line in d.ok("images", "--format", "json", f"{repo}/sub").splitlines()]
        assert docs == [{**docs[0], "ID": second[7:19], "Repository": f"{repo}/sub", "Tag": "2", "Digest": "<none>",
                         "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A", "Size": "1.98MB",
                         "VirtualSize": "1.983MB"}]
        assert "\\u003cnone\\u003e" in d.ok("images", "--format", "json", f"{repo}/sub")
        bad = d.cli("images", "--format", "{{.Nope}}", repo)
        assert bad.returncode == 1 and bad.stdout == ""
        assert bad.stderr.startswith('template parsing error: template: :1:2: executing "" at <.Nope>: '
                                     "can't evaluate field Nope")
        bad = d.cli("images", "--format", "{{.Tag", repo)
        assert (bad.returncode, bad.stderr) == (1, "template parsing error: template: :1: unclosed action\n")
    finally:
        d.cli("rmi", f"{repo}:1", f"{repo}:1b", f"{repo}/sub:2")


def test_history_flags(shared_daemon, busybox_tar):
    d, repo = shared_daemon, uniq("hist-")
    try:
        iid = d.ok("import", "-m", "a message", str(busybox_tar), repo).strip()
        human = d.ok("history", repo).splitlines()
        assert columns(human[0]) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        assert columns(human[1])[0] == iid[7:19] and human[1].endswith("1.98MB    a message")
        raw = d.ok("history", "-H=false", "--no-trunc", repo).splitlines()
        assert columns(raw[0]) == ["IMAGE", "CREATED AT", "CREATED BY", "SIZE", "COMMENT"]
        cells = columns(raw[1])
        assert cells[0] == iid and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", cells[1])
        assert cells[2:] == ["1982853", "a message"]
        assert d.ok("history", "-q", "--no-trunc", repo) == iid + "\n"
        assert json.loads(d.ok("history", "--format", "json", repo))["Comment"] == "a message"
        missing = d.cli("history", uniq("nothere-"))
        assert missing.returncode == 1 and re.fullmatch(r"Error response from daemon: No such image: \S+:latest\n",
                                                        missing.stderr)
    finally:
        d.cli("rmi", repo)


def rmi_session(run, busybox_tar, repo: str, other: str) -> list[tuple[int, list[str], list[str]]]:
    """``rmi`` of a tag, an ID with several tags, several tags at once, a missing name (``run(*args)``
    runs one CLI against one daemon)."""
    out = []

    def step(*args: str) -> str:
        result = run(*args)
        out.append((result.returncode, shape(result.stdout), shape(result.stderr)))
        return result.stdout

    iid = step("import", str(busybox_tar), f"{repo}:a").strip()
    step("tag", f"{repo}:a", f"{repo}:b")
    step("tag", f"{repo}:a", f"{other}:c")
    step("rmi", iid[7:19])
    step("rmi", f"{repo}:a")
    step("rmi", f"{repo}:b", f"{other}:c")
    step("rmi", f"{repo}:a")
    iid = step("import", str(busybox_tar), f"{repo}:a").strip()
    step("tag", f"{repo}:a", f"{repo}:b")
    step("rmi", iid[7:19])  # tags in one repository only: still a conflict without -f
    step("rmi", "-f", iid[7:19])
    step("rmi", "Upper")
    return out


@pytest.mark.compat
def test_rmi_messages_as_docker(shared_daemon, dockerd, busybox_tar):
    """``rmi`` of a tag vs an ID vs several tags: docker's messages (berth CLI -> berthd beside docker
    CLI -> dockerd)."""
    if DOCKER is None:
        pytest.skip("no docker CLI")
    repo, other = uniq("rmi-"), uniq("rmo-")
    try:
        mine = rmi_session(shared_daemon.cli, busybox_tar, repo, other)
        theirs = rmi_session(lambda *a: docker(dockerd.host, *a, check=False), busybox_tar, repo, other)
    finally:
        for name in (f"{repo}:a", f"{repo}:b", f"{other}:c"):
            shared_daemon.cli("rmi", "-f", name)
            docker(dockerd.host, "rmi", "-f", name, check=False)
    assert [m[:2] for m in mine] == [t[:2] for t in theirs]
    for (_, _, err), (_, _, their_err) in zip(mine, theirs, strict=True):
        assert err == [line.replace("docker", "berth") for line in their_err] or err[:1] == their_err[:1]
    assert mine[3][2] == ["Error response from daemon: conflict: unable to delete ID (must be forced) - "
                          "image is referenced in multiple repositories"]


def test_prune_all_events_url_import_save_load(bdaemon, busybox_tar, tmp_path):
    """``image prune`` (dangling, ``-a``, label filter), ``events`` with since/until/filters,
    ``import`` from a URL on 127.0.0.1, ``save -o`` (atomic, 0600), ``load -q``."""
    d = bdaemon
    start = time.time()
    # import from a URL served here
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "rootfs.tar").write_bytes(busybox_tar.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/rootfs.tar"
        out = d.ok("import", url, "fromurl:1")
        assert re.fullmatch(rf"Downloading from {re.escape(url)}\nsha256:[0-9a-f]{{64}}\n", out)
        assert d.ok("history", "--format", "{{.Comment}}", "fromurl:1") == f"Imported from {url}\n"
        missing = d.cli("import", url + ".nope", "fromurl:2")
        assert missing.returncode == 1 and "failed to GET" in missing.stderr and "404" in missing.stderr
    finally:
        server.shutdown()
        server.server_close()
    # save -o: atomic, 0600 like docker's CopyToFile; a failed save leaves the old file
    (tmp_path / "saved").mkdir()
    target = tmp_path / "saved" / "out.tar"
    target.write_bytes(b"old")
    failed = d.cli("save", "-o", str(target), "nothere:1")
    assert failed.returncode == 1 and target.read_bytes() == b"old"
    d.ok("save", "-o", str(target), "fromurl:1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.stat().st_size > 1_900_000
    assert os.listdir(tmp_path / "saved") == ["out.tar"]  # no temp file left
    bad_dir = d.cli("save", "-o", str(tmp_path / "no" / "x.tar"), "fromurl:1")
    assert bad_dir.returncode == 1 and bad_dir.stderr.startswith("failed to save image: invalid output path")
    # load -q still says what it loaded (docker: -q only hides progress)
    d.ok("rmi", "fromurl:1")
    assert d.ok("load", "-q", "-i", str(target)) == "Loaded image: fromurl:1\n"
    # prune: dangling only, then -a (every image no container uses), with a label filter
    d.ok("import", "-c", "LABEL keep=1", str(busybox_tar))
    dangling = d.ok("import", str(busybox_tar)).strip()
    out = d.ok("image", "prune", "-f", "--filter", "label!=keep")
    assert out.splitlines()[:3] == ["Deleted Images:", f"deleted: {dangling}", ""]
    assert out.splitlines()[-1].startswith("Total reclaimed space: ")
    box = uniq("prunebox")
    d.ok("create", "--name", box, "busybox", "true")
    out = d.ok("image", "prune", "-a", "-f")
    assert "untagged: fromurl:1" in out and "untagged: busybox:latest" not in out
    assert d.ok("images", "--format", "{{.Repository}}:{{.Tag}}") == "busybox:latest\n"
    assert d.ok("image", "prune", "-a", "-f") == "Total reclaimed space: 0B\n"
    # events: since/until windows and filters, also through the docker CLI
    since = f"{start - 1:.3f}"
    events = d.ok("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", "type=image",
                  "--format", "{{.Action}} {{.Actor.Attributes.name}}").splitlines()
    assert "tag fromurl:1" in events and "untag sha256:" in "\n".join(events)
    assert "prune <no value>" in events  # a prune event has no name attribute, as in dockerd
    assert "create" not in [e.split()[0] for e in events]
    tags = d.ok("events", "--since", since, "--until", "0s", "-f", "event=tag", "-f", "image=fromurl:1",
                "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert tags == "tag fromurl:1\n"
    assert d.ok("events", "--since", "1m", "--until", f"{start - 30:.0f}") == ""
    reversed_window = d.cli("events", "--since", "0s", "--until", "1m")
    assert reversed_window.returncode == 1 and "cannot be after `until` time" in reversed_window.stderr
    bad = d.cli("events", "--since", "abc")
    assert (bad.returncode, bad.stderr) == (1, 'failed to parse value as time or duration: "abc"\n')
    if DOCKER is not None:  # the docker CLI's own window arguments, and the same lines as berth's
        lines = docker(d.host, "events", "--since", "1m", "--until", "0s", "--filter", "type=image").stdout
        assert re.search(r"^\S+ image import sha256:[0-9a-f]{64} \(name=sha256:", lines, re.M)
        window = ["--since", str(int(start) - 1), "--until", str(int(time.time()) + 1)]
        theirs, mine = docker(d.host, "events", *window).stdout, d.ok("events", *window)
        assert theirs.splitlines() == mine.splitlines()
    d.ok("rm", box)
