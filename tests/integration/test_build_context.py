"""Build contexts through a real berthd: .dockerignore, symlinks, remote contexts (git over a
loopback dumb-HTTP server, tarball and Dockerfile URLs), ADD of URLs and local archives."""

from __future__ import annotations

import functools
import gzip
import http.server
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_build_support import (
    Symlink,
    build,
    context_tar,
    directory_tar,
    inspect,
    post_build,
    require_containers,
    run_output,
)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for ``tmp_path/www``: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def test_dockerignore(bdaemon, tmp_path: Path):
    require_containers(bdaemon)
    root = tmp_path / "ctx"
    for name in ("keep.txt", "secret.key", "logs/a.log", "logs/important.log", "src/main.c", "src/build/x.o"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / ".dockerignore").write_text("*.key\nlogs/*.log\n!logs/important.log\n**/build\nDockerfile\n.dockerignore\n")
    (root / "Dockerfile").write_text("FROM busybox\nCOPY . /app\nCMD [\"find\", \"/app\", \"-type\", \"f\"]\n")
    tag = f"ignore-{uuid.uuid4().hex[:8]}"
    result = post_build(bdaemon.host, directory_tar(root), {"t": tag})
    assert result.error is None, result.output
    # The CLI left the ignored files out; the daemon removed the Dockerfile and .dockerignore.
    found = sorted(run_output(bdaemon, tag).split())
    assert found == ["/app/keep.txt", "/app/logs/important.log", "/app/src/main.c"]


def test_symlinks_never_reach_host_files(bdaemon):
    require_containers(bdaemon)
    files = {"Dockerfile": "FROM busybox\nCOPY dir /dir\nCMD [\"readlink\", \"/dir/passwd\"]\n",
             "dir/passwd": Symlink("/etc/passwd"), "abs": Symlink("/etc/shadow"), "up": Symlink("../../../etc")}
    tag = f"links-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, files, t=tag)
    assert result.error is None, result.output
    assert run_output(bdaemon, tag) == "/etc/passwd\n"  # copied as a link, not the host's file
    for source in ("abs", "up/passwd"):
        failed = build(bdaemon, {**files, "Dockerfile": f"FROM busybox\nCOPY {source} /x\n"})
        assert failed.error == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                                f"stat {source}: file does not exist")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd,
                   check=True, capture_output=True)


def test_remote_git_context(bdaemon, http_root):
    require_containers(bdaemon)
    base, www = http_root
    work = www.parent / "work"
    (work / "app").mkdir(parents=True)
    (work / "app/Dockerfile").write_text("FROM busybox\nCOPY hello.txt /\nCMD [\"cat\", \"/hello.txt\"]\n")
    (work / "app/hello.txt").write_text("from git\n")
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    _git(work, "branch", "release")
    (work / "app/hello.txt").write_text("from main\n")
    _git(work, "commit", "-q", "-am", "two")
    _git(www, "clone", "-q", "--bare", str(work), "repo.git")
    _git(www / "repo.git", "update-server-info")
    tag = f"git-{uuid.uuid4().hex[:8]}"
    result = post_build(bdaemon.host, None, {"remote": f"{base}/repo.git#release:app", "t": tag})
    assert result.error is None, result.output
    assert run_output(bdaemon, tag) == "from git\n"
    default = post_build(bdaemon.host, None, {"remote": f"{base}/repo.git#:app", "t": tag + "-main"})
    assert default.error is None, default.output
    assert run_output(bdaemon, tag + "-main") == "from main\n"
    bad = post_build(bdaemon.host, None, {"remote": f"{base}/repo.git#release:nope"})
    assert bad.status == 400 and "not a directory" in bad.body["message"]


def test_remote_tarball_and_dockerfile_urls(bdaemon, http_root):
    require_containers(bdaemon)
    base, www = http_root
    tar = context_tar({"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "tarball\n"})
    (www / "ctx.tar.gz").write_bytes(gzip.compress(tar))
    (www / "Dockerfile").write_text("FROM busybox\nLABEL from=url\n")
    result = post_build(bdaemon.host, None, {"remote": f"{base}/ctx.tar.gz", "t": "url-tar"})
    assert result.error is None, result.output
    assert run_output(bdaemon, "url-tar", "cat", "/f") == "tarball\n"
    plain = post_build(bdaemon.host, None, {"remote": f"{base}/Dockerfile", "t": "url-df"})
    assert plain.error is None, plain.output
    assert inspect(bdaemon, "url-df")["Config"]["Labels"] == {"from": "url"}
    odd = post_build(bdaemon.host, None, {"remote": "ftp://example.invalid/x"})
    assert odd.status == 400 and odd.body["message"] == "remoteURL (ftp://example.invalid/x) could not be recognized as URL"


def test_add_url_and_archives(bdaemon, http_root):
    require_containers(bdaemon)
    base, www = http_root
    (www / "file.txt").write_text("downloaded\n")
    os.utime(www / "file.txt", (1500000000, 1500000000))
    archive = context_tar({"pkg/bin/tool": "tool\n", "pkg/README": "read me\n"})
    dockerfile = (f"FROM busybox\nADD {base}/file.txt /dl/\nADD pkg.tar.gz /opt/\nADD --chown=7:8 plain.txt /p\n"
                  "CMD [\"sh\", \"-c\", \"stat -c '%n %a %u:%g %Y' /dl/file.txt /opt/pkg/bin/tool /p; cat /dl/file.txt\"]\n")
    tag = f"add-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, {"Dockerfile": dockerfile, "pkg.tar.gz": gzip.compress(archive), "plain.txt": "p"}, t=tag)
    assert result.error is None, result.output
    lines = run_output(bdaemon, tag).splitlines()
    assert lines[0] == "/dl/file.txt 600 0:0 1500000000"  # mode 0600, mtime from Last-Modified
    assert lines[1].startswith("/opt/pkg/bin/tool 644 0:0")
    assert lines[2].startswith("/p 644 7:8") and lines[3] == "downloaded"
    refused = build(bdaemon, {"Dockerfile": f"FROM busybox\nCOPY {base}/file.txt /x\n"})
    assert refused.error == "COPY failed: source can't be a URL for COPY"



def test_copy_rules(bdaemon):
    require_containers(bdaemon)
    dockerfile = (
        "FROM busybox\nWORKDIR /w\nCOPY a.txt rel/\nCOPY a.txt .\nCOPY a.txt /renamed\nCOPY dir /into/\n"
        "COPY *.md /docs/\nCOPY --chmod=700 --chown=1:1 a.txt /modes/\n"
        "ENV WHO=world\nCOPY <<EOF /inline/note\nhello $WHO\nEOF\n"
        "CMD [\"sh\", \"-c\", \"cd / && find w renamed into docs modes inline | sort && "
        "stat -c '%a %u' modes/a.txt && cat inline/note\"]\n")
    files = {"Dockerfile": dockerfile, "a.txt": "a", "dir/sub/f": "f", "x.md": "x", "y.md": "y"}
    tag = f"rules-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, files, t=tag)
    assert result.error is None, result.output
    out = run_output(bdaemon, tag).splitlines()
    assert out[:-2] == ["docs", "docs/x.md", "docs/y.md", "inline", "inline/note", "into", "into/sub",
                        "into/sub/f", "modes", "modes/a.txt", "renamed", "w", "w/a.txt", "w/rel", "w/rel/a.txt"]
    assert out[-2:] == ["700 1", "hello world"]  # the heredoc expands with the stage's variables
