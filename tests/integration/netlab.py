"""Helpers for the networking tests through a real berthd: uniquely named containers and networks
that are always removed, a busybox httpd image, fetches from the host over loopback and
``wget`` from inside containers.

No traffic leaves the machine: the host fetches from 127.0.0.1/::1 only (``http.client``, which
ignores proxy variables), containers talk to containers on the test's bridges, and a container
that must try a name gets ``--dns`` pointing at a berth address on this host, never the host's
upstream resolver.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

PAGE = "hello from berth httpd\n"
DOCKERFILE = f"""FROM busybox
RUN mkdir /www && echo '{PAGE.strip()}' > /www/index.html
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""
SERVE_HOSTNAME = ["httpd", "-f", "-p", "80", "-h", "/etc"]
"""A command for the web image serving /etc: ``GET /hostname`` names the container that answered."""


def uniq(prefix: str = "nt") -> str:
    """A name no other test run uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    """A TCP port nothing listens on right now (IPv4 and IPv6 wildcard)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", 0))
            port = sock.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6) as six:
                six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                six.bind(("::", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def fetch(port: int, path: str = "/", host: str = "127.0.0.1", timeout: float = 5, attempts: int = 25) -> str:
    """GET ``http://host:port/path`` from the host (loopback), retried while the server comes up;
    returns the body. Raises the last OSError when it never answers."""
    error: Exception | None = None
    for _ in range(attempts):
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            if response.status == 200:
                return body
            error = OSError(f"HTTP {response.status}")
        except OSError as exc:
            error = exc
        finally:
            conn.close()
        time.sleep(0.2)
    assert error is not None
    raise error


def answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class Lab:
    """Objects one test makes on a daemon (``d``: tests.daemon_fixture.Daemon), removed by
    :meth:`cleanup` whatever happened."""

    def __init__(self, d: Any) -> None:
        self.d = d
        self.containers: list[str] = []
        self.networks: list[str] = []

    def run(self, *args: str, name: str | None = None) -> str:
        """``berth run -d --name NAME ARGS``; returns the name (asserting success)."""
        name = name or uniq("c")
        self.containers.append(name)
        self.d.ok("run", "-d", "--name", name, *args)
        return name

    def try_run(self, *args: str, name: str | None = None) -> Any:
        """``berth run -d --name NAME ARGS`` that may fail; returns the CompletedProcess."""
        name = name or uniq("c")
        self.containers.append(name)
        return self.d.cli("run", "-d", "--name", name, *args)

    def serve(self, image: str, *args: str, name: str | None = None) -> str:
        """A web container answering ``GET /hostname`` with its name (hostname = name)."""
        name = name or uniq("w")
        return self.run("--hostname", name, *args, image, *SERVE_HOSTNAME, name=name)

    def client(self, *args: str) -> str:
        """A long-running busybox container to ``exec`` wget and nslookup in."""
        return self.run(*args, "busybox", "sleep", "3600")

    def network(self, *args: str) -> str:
        """``berth network create ARGS NAME``; returns the name."""
        name = uniq("n")
        self.networks.append(name)
        self.d.ok("network", "create", *args, name)
        return name

    def sh(self, container: str, script: str, timeout: float = 60) -> Any:
        """``berth exec CONTAINER sh -c SCRIPT`` (CompletedProcess, output in .stdout/.stderr)."""
        return self.d.cli("exec", container, "sh", "-c", script, timeout=timeout)

    def wget(self, container: str, url: str, retries: int = 10) -> str:
        """Body of ``url`` fetched inside ``container`` (retried while a server starts); asserts success."""
        script = (f"for i in $(seq {retries}); do timeout 5 wget -qO- {url} && exit 0; sleep 0.2; done; exit 1")
        result = self.sh(container, script)
        assert result.returncode == 0, f"{container} cannot fetch {url}: {result.stdout}{result.stderr}"
        return result.stdout

    def cannot_wget(self, container: str, url: str, seconds: int = 1) -> str:
        """Assert one ``wget`` of ``url`` inside ``container`` fails within ``seconds``; returns
        its output (busybox prints ``bad address`` for a name that does not resolve)."""
        result = self.sh(container, f"timeout {seconds} wget -qO- {url}")
        assert result.returncode != 0, f"{container} fetched {url}: {result.stdout}"
        return result.stdout + result.stderr

    def inspect(self, ref: str, kind: str = "container") -> dict[str, Any]:
        """``berth <kind> inspect REF`` as JSON."""
        return json.loads(self.d.ok(kind, "inspect", ref))[0]

    def ip(self, container: str, network: str = "bridge") -> str:
        """The container's address on ``network``."""
        return self.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]

    def gateway(self, network: str) -> str:
        """The gateway address of ``network`` (where berth serves its DNS on user networks)."""
        return self.inspect(network, "network")["IPAM"]["Config"][0]["Gateway"]

    def cleanup(self) -> None:
        """Remove the containers and networks this lab made (missing ones are fine)."""
        if self.containers:
            self.d.cli("rm", "-f", *self.containers)
        for name in reversed(self.networks):
            self.d.cli("network", "rm", name)


def build_web_image(d: Any, tmp: Path, tag: str) -> str:
    """Build the busybox httpd image (EXPOSE 80, CMD httpd -f -p 80) as ``tag`` with ``berth build``."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "Dockerfile").write_text(DOCKERFILE)
    d.ok("build", "-q", "-t", tag, str(tmp))
    return tag


def default_gateway(d: Any) -> str:
    """The default bridge's gateway (berth serves no DNS there: a lookup sent to it fails at once)."""
    net = json.loads(d.ok("network", "inspect", "bridge"))[0]
    return net["IPAM"]["Config"][0].get("Gateway") or _first_host(net["IPAM"]["Config"][0]["Subnet"])


def _first_host(subnet: str) -> str:
    from ipaddress import IPv4Network

    return str(next(IPv4Network(subnet).hosts()))
