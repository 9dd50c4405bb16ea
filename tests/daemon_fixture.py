"""A real berthd for tests: temporary data root, short exec root, always stopped and cleaned.

``Daemon.cli("images")`` runs the real ``berth`` CLI against it. Cleaning first removes the
daemon's containers and user networks through its API (so it tears its bridges and chains down
itself), stops it, then kills shims the daemon left (live restore keeps them), deletes the
bridges, veths and iptables chains its database names (a daemon killed mid-test cannot do it),
unmounts everything under the data root and removes the directories. What is still there after
that is reported as an error of the test (``leftovers``), and every cleaned daemon is remembered
for the session-end check (``session_leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
BERTH = str(VENV_BIN / "berth")
BERTHD = str(VENV_BIN / "berthd")


def _ping(sock_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Daemon:
    """One berthd process on its own data root (``root``) and exec root (``exec_root``)."""

    def __init__(self, base: Path, extra_args: list[str] | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.root = base / "data"
        self.exec_root = Path(f"/run/bt-{tag}")
        self.sock = str(self.exec_root / "berth.sock")
        self.host = f"unix://{self.sock}"
        self.log_path = base / "berthd.log"
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.env = {**os.environ, "BERTH_HOST": self.host, "DOCKER_HOST": self.host}

    def start(self, timeout: float = 20) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [BERTHD, "--data-root", str(self.root), "--exec-root", str(self.exec_root), "-H", self.host,
             "--log-level", "debug", "--bridge-name", f"bt{self.tag[:6]}", *self.extra_args],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited with {self.proc.returncode}:\n{self.log()}")
            if _ping(self.sock):
                return
            time.sleep(0.05)
        raise RuntimeError(f"berthd did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Stop the daemon with ``sig`` (SIGKILL simulates a crash); returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def cli(self, *args: str, input: str | bytes | None = None, timeout: float = 120,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run ``berth ARGS`` against this daemon; text output unless ``input`` is bytes."""
        text = not isinstance(input, bytes)
        result = subprocess.run([BERTH, *args], input=input, capture_output=True, text=text, env=self.env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"berth {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def ok(self, *args: str, **kw) -> str:
        """Run ``berth ARGS``, assert success, return stdout."""
        return self.cli(*args, check=True, **kw).stdout

    def cleanup(self) -> None:
        """Remove containers and networks through the API, stop the daemon, kill what it left
        running, delete its links and chains, unmount and delete its state. Raises AssertionError
        naming what could not be removed."""
        if self.proc is not None and self.proc.poll() is None:
            self.remove_objects()
        self.stop()
        made = self.network_resources()
        CLEANED.append(made)
        kill_shims(self.exec_root, self.root)
        remove_links(self.tag)
        remove_network_resources(made)
        unmount_under(self.root)
        unmount_under(self.exec_root)
        remove_cgroups(self.root)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)
        # a SIGKILLed berthd leaves its (unlocked) bridge claim file behind
        Path(f"/run/lock/berth-bridge-bt{self.tag[:6]}.lock").unlink(missing_ok=True)
        left = wait_for_no_leftovers(made)
        if left:
            raise AssertionError(f"berthd {self.tag} left behind: {', '.join(left)}")

    def remove_objects(self, timeout: float = 60) -> None:
        """Best effort: ``rm -f`` every container and prune the user networks, so the daemon
        releases endpoints and removes bridges and rules on its own before it stops."""
        try:
            ids = self.cli("ps", "-aq", "--no-trunc", timeout=timeout).stdout.split()
            if ids:
                self.cli("rm", "-f", *ids, timeout=timeout)
            self.cli("network", "prune", "-f", timeout=timeout)
        except (OSError, subprocess.SubprocessError):
            pass

    def network_resources(self) -> NetworkResources:
        """What this daemon may have made on the host, read from its database (bridges and
        endpoint veths of every network) plus its own names (default bridge, chain prefix)."""
        made = NetworkResources(tag=self.tag, roots=[str(self.root), str(self.exec_root)],
                                chain_prefix=chain_prefix(f"bt{self.tag[:6]}"))
        made.links.add(f"bt{self.tag[:6]}")
        for record in _network_records(self.root / "berth.db"):
            if record.get("Bridge"):
                made.links.add(str(record["Bridge"]))
            for endpoint in (record.get("Endpoints") or {}).values():
                made.veths.add(str(endpoint.get("HostIfname") or ""))
        made.veths.discard("")
        return made


def kill_shims(*roots: Path) -> None:
    """SIGKILL every process whose command line, environment or open files mention one of
    ``roots`` (shims retitle themselves ``berth-shim ...``, so their open files are what names
    them; a container init not yet started is a fork of its shim and holds the same files)."""
    found = processes_using(*roots)
    doomed = set(found)
    for pid in [*found, *_children(found)]:  # a shim's container: its init and the init's cgroup
        doomed.add(pid)
        doomed.update(_berth_cgroup_members(pid))
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.1)


def _children(parents: list[int]) -> list[int]:
    wanted, out = set(parents), []
    for pid_s in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(Path(f"/proc/{pid_s}/stat").read_text().rsplit(")", 1)[1].split()[1]) in wanted:
                out.append(int(pid_s))
    return out


def _berth_cgroup_members(pid: int) -> set[int]:
    """Every process in the berth container cgroups ``pid`` belongs to (v1 and v2)."""
    members: set[int] = set()
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "/berth/" not in path:
                continue
            name = controllers.split(",")[0].replace("name=", "") if controllers else "unified"
            for group in (f"/sys/fs/cgroup/{name}{path}", f"/sys/fs/cgroup{path}"):  # hybrid, then pure v2
                with contextlib.suppress(OSError, ValueError):
                    members.update(int(p) for p in Path(f"{group}/cgroup.procs").read_text().split())
                    break
    return members


def shim_pids(daemon: Daemon) -> list[int]:
    """Shims (``berth-shim ...``, with any container init they forked) holding ``daemon``'s files."""
    found = []
    for pid in processes_using(daemon.root, daemon.exec_root):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"berth-shim"):
                found.append(pid)
    return found


def assert_no_shims(daemon: Daemon, timeout: float = 10) -> None:
    """Wait up to ``timeout`` s for ``daemon``'s shims to be gone; AssertionError naming those left."""
    deadline = time.time() + timeout
    while shim_pids(daemon) and time.time() < deadline:
        time.sleep(0.1)
    assert shim_pids(daemon) == []


def processes_using(*roots: Path) -> list[int]:
    """PIDs (not ours) whose command line, environment, working directory or open file
    descriptors name a path under one of ``roots``."""
    needles = [str(r) for r in roots]
    me, found = os.getpid(), []
    for pid_s in os.listdir("/proc"):
        if not pid_s.isdigit() or int(pid_s) == me:
            continue
        try:
            texts = [Path(f"/proc/{pid_s}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"),
                     Path(f"/proc/{pid_s}/environ").read_bytes().decode(errors="replace"),
                     os.readlink(f"/proc/{pid_s}/cwd")]
            for fd in os.listdir(f"/proc/{pid_s}/fd"):
                with contextlib.suppress(OSError):
                    texts.append(os.readlink(f"/proc/{pid_s}/fd/{fd}"))
        except OSError:
            continue
        if any(n in t for n in needles for t in texts):
            found.append(int(pid_s))
    return found


def unmount_under(root: Path) -> None:
    """Lazily unmount every mount point below ``root`` (deepest first)."""
    root_s = str(root)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    for point in sorted((p for p in points if p.startswith(root_s)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_cgroups(root: Path) -> None:
    """Kill the processes of this daemon's container cgroups and remove the cgroups (the daemon
    removes its own; this catches crashes). Only cgroups named after this data root's containers."""
    ids = [p.name for p in (root / "containers").iterdir()] if (root / "containers").is_dir() else []
    base = Path("/sys/fs/cgroup")
    for ctl in (list(base.iterdir()) if base.exists() else []):
        for cid in ids:
            group = ctl / "berth" / cid
            if not group.is_dir():
                continue
            for child in sorted([group, *group.rglob("*")], key=lambda p: len(str(p)), reverse=True):
                if not child.is_dir():
                    continue
                try:
                    for pid in (child / "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                except OSError:
                    pass
                for _ in range(20):
                    try:
                        child.rmdir()
                        break
                    except OSError:
                        time.sleep(0.05)


def remove_links(tag: str) -> None:
    """Delete network links named after this daemon's tag (bridges ``bt<tag>``)."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(f"bt{tag[:6]}"):
            subprocess.run(["ip", "link", "delete", name], capture_output=True)


# ----- network leftovers ------------------------------------------------------------------------

@dataclass
class NetworkResources:
    """Host objects of one test daemon: link names (bridges), endpoint veths, the iptables chain
    prefix (``B-<bridge name>``) and its data and exec roots (processes and mounts)."""

    tag: str
    roots: list[str]
    chain_prefix: str
    links: set[str] = field(default_factory=set)
    veths: set[str] = field(default_factory=set)


CLEANED: list[NetworkResources] = []
"""Every daemon cleaned in this session, for ``session_leftovers``."""


def chain_prefix(bridge_name: str) -> str:
    """berthd's iptables chain prefix for ``--bridge-name`` (``network.service.firewall_prefix``)."""
    from berth.network.service import firewall_prefix

    return firewall_prefix(bridge_name)


def _network_records(db_path: Path) -> list[dict]:
    if not db_path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT record FROM networks").fetchall()
    except sqlite3.Error:
        return []
    return [json.loads(row[0]) for row in rows]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)


def _chains(prefix: str) -> list[tuple[str, str]]:
    """``(table, chain)`` of every chain named ``<prefix>-*`` in filter and nat."""
    if not shutil.which("iptables"):
        return []
    found = []
    for table in ("filter", "nat"):
        for line in _iptables("-t", table, "-S").stdout.splitlines():
            words = line.split()
            if words[:1] == ["-N"] and words[1].startswith(prefix + "-"):
                found.append((table, words[1]))
    return found


def remove_network_resources(made: NetworkResources) -> None:
    """Delete the veths, bridges and iptables chains of ``made`` (whatever still exists)."""
    for name in sorted(made.veths) + sorted(made.links):
        subprocess.run(["ip", "link", "delete", name], capture_output=True)
    chains = _chains(made.chain_prefix)
    for table, chain in chains:
        for hook in ("FORWARD", "POSTROUTING"):
            while _iptables("-t", table, "-D", hook, "-j", chain).returncode == 0:
                pass
        _iptables("-t", table, "-F", chain)
    for table, chain in chains:
        _iptables("-t", table, "-X", chain)


def leftovers(made: NetworkResources) -> list[str]:
    """What of ``made`` still exists: links, chains, processes and mounts under its roots."""
    links = set(_link_names())
    found = [f"link {name}" for name in sorted((made.links | made.veths) & links)]
    found += [f"link {name}" for name in sorted(links) if name.startswith(f"bt{made.tag[:6]}")
              and name not in made.links]
    found += [f"iptables chain {table}:{chain}" for table, chain in _chains(made.chain_prefix)]
    found += [f"process {pid}" for pid in _processes_under(made.roots)]
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    found += [f"mount {p}" for p in points if any(p == r or p.startswith(r + "/") for r in made.roots)]
    return found


def wait_for_no_leftovers(made: NetworkResources, timeout: float = 5, remove: bool = True) -> list[str]:
    """``leftovers(made)`` once it is empty or ``timeout`` seconds passed (the kernel removes a
    dead namespace's veths asynchronously); with ``remove``, deleting them again meanwhile."""
    deadline = time.time() + timeout
    while True:
        left = leftovers(made)
        if not left or time.time() > deadline:
            return left
        if remove:
            remove_network_resources(made)
        time.sleep(0.2)


def session_leftovers(timeout: float = 2) -> list[str]:
    """Leftovers of every daemon cleaned in this session, removing nothing (session-end check)."""
    return [f"berthd {made.tag}: {item}" for made in CLEANED
            for item in wait_for_no_leftovers(made, timeout, remove=False)]


def _link_names() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def _processes_under(roots: list[str]) -> list[int]:
    me, found = os.getpid(), []
    for pid_s in os.listdir("/proc"):
        if not pid_s.isdigit() or int(pid_s) == me:
            continue
        try:
            cmd = Path(f"/proc/{pid_s}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd and any(root in cmd for root in roots):
            found.append(int(pid_s))
    return found
