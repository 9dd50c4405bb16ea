"""Helpers for the build tests: context tars, ``POST /build`` over the daemon's socket, results.

Contexts are made here (as the CLI would send them), so the tests do not depend on the
``berth build`` command. The checks at the bottom cover the helpers themselves.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.build.dockerignore import read_patterns, walk_context

MTIME = 1600000000


class Symlink(str):
    """A context entry that is a symlink to this target."""


class Dir(str):
    """A context entry that is a directory (the value is ignored)."""


def context_tar(files: dict[str, Any], *, mtime: int = MTIME, modes: dict[str, int] | None = None) -> bytes:
    """A context tar from ``{name: bytes | str | Symlink | Dir}``, owners 0:0 as the CLI sends."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, value in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.mode = (modes or {}).get(name, 0o644)
            if isinstance(value, Symlink):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(value), 0o777
                tar.addfile(info)
            elif isinstance(value, Dir):
                info.type, info.mode = tarfile.DIRTYPE, (modes or {}).get(name, 0o755)
                tar.addfile(info)
            else:
                data = value.encode() if isinstance(value, str) else value
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def directory_tar(root: Path, dockerfile: str = "Dockerfile") -> bytes:
    """The tar the docker CLI sends for directory ``root``: .dockerignore applied, owners 0:0."""
    ignore = root / ".dockerignore"
    patterns = read_patterns(ignore.read_text()) if ignore.exists() else []
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_context(root, patterns, dockerfile):
            info = tar.gettarinfo(str(root / rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(root / rel, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


@dataclass
class BuildResult:
    """What ``POST /build`` answered: ``status``, the decoded ``messages`` (or the error body)."""

    status: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """The ``stream`` text, concatenated as a client prints it."""
        return "".join(m.get("stream", "") for m in self.messages)

    @property
    def error(self) -> str | None:
        """The stream's error message, or the HTTP error's message."""
        for m in self.messages:
            if "error" in m:
                return m["error"]
        return self.body.get("message")

    @property
    def error_code(self) -> int | None:
        for m in self.messages:
            if "errorDetail" in m:
                return m["errorDetail"].get("code")
        return None

    @property
    def image_id(self) -> str | None:
        """The last ``aux`` ID (the build's result)."""
        ids = [m["aux"]["ID"] for m in self.messages if "aux" in m]
        return ids[-1] if ids and self.error is None else None

    def steps(self) -> list[str]:
        """The ``Step N/M : ...`` lines."""
        return [line for line in self.output.splitlines() if line.startswith("Step ")]


def post_build(host: str, body: bytes | None, params: dict[str, Any] | None = None,
               timeout: float = 240) -> BuildResult:
    """``POST /v1.41/build`` on a ``unix://`` daemon; list values become repeated parameters,
    dicts JSON."""
    query: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            text = json.dumps(item) if isinstance(item, dict) else str(item)
            query.append((key, text))
    conn = _UnixConnection(host.removeprefix("unix://"), timeout)
    try:
        headers = {"Content-Type": "application/x-tar"}
        conn.request("POST", "/v1.41/build?" + urllib.parse.urlencode(query), body=body or b"", headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200:
        return BuildResult(response.status, body=json.loads(data or b"{}"))
    messages = [json.loads(line) for line in data.splitlines() if line.strip()]
    return BuildResult(200, messages)


def build(daemon: Any, files: dict[str, Any], **params: Any) -> BuildResult:
    """Build ``files`` (see :func:`context_tar`) on ``daemon``."""
    return post_build(daemon.host, context_tar(files), params)


def api_get(daemon: Any, path: str) -> Any:
    """``GET /v1.41<path>`` on ``daemon`` (berthd or dockerd), decoded; None for a 404."""
    conn = _UnixConnection(daemon.host.removeprefix("unix://"), 60)
    try:
        conn.request("GET", "/v1.41" + path)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return None if response.status == 404 else json.loads(data)


def inspect(daemon: Any, ref: str) -> dict[str, Any]:
    """``GET /images/{ref}/json``."""
    return api_get(daemon, f"/images/{ref}/json")


def history(daemon: Any, ref: str) -> list[dict[str, Any]]:
    """``GET /images/{ref}/history``: newest first, as docker returns it."""
    return api_get(daemon, f"/images/{ref}/history")


def created_by(daemon: Any, ref: str) -> list[str]:
    """The image's history ``created_by`` strings, oldest first."""
    return [entry["CreatedBy"] for entry in reversed(history(daemon, ref))]


def require_containers(daemon: Any) -> None:
    """Skip the test when this daemon cannot run a container at all (a runtime or host problem,
    not the builder's): RUN steps and checks of built images need one."""
    import docker
    import pytest

    verdict = getattr(daemon, "_containers_run", None)
    if verdict is None:
        client = docker.APIClient(base_url=daemon.host, version="1.41")
        cid = client.create_container("busybox", ["true"])["Id"]
        try:
            client.start(cid)
            client.wait(cid, timeout=60)
            verdict = ""
        except docker.errors.APIError as err:
            verdict = str(err.explanation or err)
        finally:
            client.remove_container(cid, force=True)
        daemon._containers_run = verdict
    if verdict:
        pytest.skip(f"containers cannot run on this daemon: {verdict}")


def run_output(daemon: Any, image: str, *cmd: str) -> str:
    """Run ``image`` (with ``cmd`` when given) to completion through the API; its output."""
    import docker

    client = docker.APIClient(base_url=daemon.host, version="1.41")
    cid = client.create_container(image, list(cmd) or None)["Id"]
    try:
        client.start(cid)
        client.wait(cid, timeout=60)
        return client.logs(cid).decode()
    finally:
        client.remove_container(cid, force=True)


# ----- checks of the helpers ------------------------------------------------------------------


def test_context_tar_round_trip():
    data = context_tar({"d": Dir(), "d/f": "x", "l": Symlink("d/f")})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["d"].isdir() and members["d/f"].size == 1 and members["l"].linkname == "d/f"


def test_build_result_accessors():
    result = BuildResult(200, [{"stream": "Step 1/1 : FROM x"}, {"stream": "\n"}, {"aux": {"ID": "sha256:1"}},
                               {"stream": "Successfully built 1\n"}])
    assert result.steps() == ["Step 1/1 : FROM x"] and result.image_id == "sha256:1" and result.error is None
    failed = BuildResult(200, [{"errorDetail": {"code": 3, "message": "m"}, "error": "m"}])
    assert failed.error == "m" and failed.error_code == 3 and failed.image_id is None
