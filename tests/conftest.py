"""Shared fixtures: busybox root filesystem from the busybox-static package.

The daemon fixture lives in ``tests/daemon_fixture.py`` and is re-exported here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_mkbusybox():
    spec = importlib.util.spec_from_file_location("mkbusybox", ROOT / "contrib/mkimage/mkbusybox.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory) -> Path:
    """Path of a deterministic busybox rootfs tar (skips when busybox-static is absent)."""
    if not os.path.exists("/usr/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    _load_mkbusybox().build_tar(str(out))
    return out


@pytest.fixture(scope="session")
def busybox_rootfs(busybox_tar, tmp_path_factory) -> Path:
    """A directory holding the extracted busybox rootfs (read-only use: copy it to change it)."""
    root = tmp_path_factory.mktemp("busybox-rootfs")
    with tarfile.open(busybox_tar) as tar:
        tar.extractall(root, filter="fully_trusted")
    return root


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root")
        for item in items:
            if "integration" in str(item.fspath) or "compat" in str(item.fspath):
                item.add_marker(skip)


def have(cmd: str) -> bool:
    """True when ``cmd`` is on PATH."""
    return shutil.which(cmd) is not None


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    """subprocess.run with text output captured (helper for tests)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(argv), **kw)


# ----- daemon fixtures ---------------------------------------------------------------------------
from tests.daemon_fixture import Daemon  # noqa: E402


@pytest.fixture
def daemon(tmp_path):
    """A fresh berthd for one test (stopped and cleaned afterwards)."""
    d = Daemon(tmp_path)
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory, busybox_tar):
    """One berthd for the session with ``busybox:latest`` imported (CMD ["sh"])."""
    d = Daemon(tmp_path_factory.mktemp("shared-daemon"))
    try:
        d.start()
        d.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def bdaemon(daemon, busybox_tar):
    """A fresh berthd with ``busybox:latest`` imported."""
    daemon.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
    return daemon


@pytest.fixture(scope="session")
def dockerd(busybox_tar):
    """A real dockerd (Debian docker.io) with busybox imported; skips when absent."""
    from tests.dockerd_fixture import start_dockerd

    d = start_dockerd(busybox_tar)
    if d is None:
        pytest.skip("dockerd (Debian docker.io) is not available")
    try:
        yield d
    finally:
        d.stop()
