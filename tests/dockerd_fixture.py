"""A real dockerd (Debian's docker.io) for side-by-side tests; skipped when it is not installed.

With ``BERTH_TEST_DOCKERD_HOST`` set (e.g. ``unix:///run/docker-peer.sock``) the tests use that
running dockerd; otherwise one is started on a private data root, exec root and socket for the
session and stopped afterwards. Either way ``busybox:latest`` is imported from the busybox-static
package, so nothing is pulled from Docker Hub.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

DOCKER_CLI = shutil.which("docker")


class Dockerd:
    """A dockerd reachable at ``host``; ``docker(...)`` runs the docker CLI against it."""

    def __init__(self, host: str, proc: subprocess.Popen | None = None, root: Path | None = None,
                 exec_root: Path | None = None, log: Path | None = None, bridge: str = "") -> None:
        self.host = host
        self.proc = proc
        self.root = root
        self.exec_root = exec_root
        self.log = log
        self.bridge = bridge
        self.env = {**os.environ, "DOCKER_HOST": host, "BERTH_HOST": host, "DOCKER_BUILDKIT": "0"}

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 120,
               check: bool = False) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        result = subprocess.run([DOCKER_CLI or "docker", *args], input=input, capture_output=True, text=text,
                                env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for root in (self.exec_root, self.root):
            if root is None:
                continue
            out = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout
            for point in sorted((p for p in out.split() if p.startswith(str(root))), key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        if self.log is not None:
            self.log.unlink(missing_ok=True)
        if self.bridge:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)


def start_dockerd(busybox_tar: Path) -> Dockerd | None:
    """A dockerd with busybox imported, or None when dockerd or the docker CLI is missing."""
    host = os.environ.get("BERTH_TEST_DOCKERD_HOST")
    if host:
        d = Dockerd(host)
    else:
        if not shutil.which("dockerd") or not DOCKER_CLI:
            return None
        tag = uuid.uuid4().hex[:6]
        root = Path(f"/var/lib/dockerd-test-{tag}")
        exec_root = Path(f"/run/dockerd-test-{tag}")
        sock = f"/run/dockerd-test-{tag}.sock"
        root.mkdir(parents=True)
        exec_root.mkdir(parents=True)
        log_path = root.parent / f"dockerd-test-{tag}.log"
        log = open(log_path, "ab")  # noqa: SIM115
        # Its own bridge: with `--bridge none` dockerd deletes the host's docker0 at start (libnetwork's
        # removeDefaultBridgeInterface), pulling it from under any other dockerd on the machine.
        bridge = f"dt{tag}"
        for cmd in (["link", "add", bridge, "type", "bridge"],
                    ["addr", "add", f"100.64.{int(tag[:2], 16)}.1/24", "dev", bridge], ["link", "set", bridge, "up"]):
            subprocess.run(["ip", *cmd], capture_output=True, check=True)
        proc = subprocess.Popen(["dockerd", "--data-root", str(root), "--exec-root", str(exec_root),
                                 "-H", f"unix://{sock}", "--pidfile", str(exec_root / "dockerd.pid"),
                                 "--bridge", bridge, "--iptables=false", "--ip-forward=false",
                                 "--ip-masq=false"], stdout=log, stderr=log, start_new_session=True)
        d = Dockerd(f"unix://{sock}", proc, root, exec_root, log_path, bridge)
        deadline = time.time() + 60
        while time.time() < deadline:
            if d.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0:
                break
            if proc.poll() is not None:
                d.stop()
                return None
            time.sleep(0.5)
        else:
            d.stop()
            return None
    if d.docker("image", "inspect", "busybox:latest").returncode != 0:
        d.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest", check=True)
    return d
