"""A short description of the machine a bench ran on (for BENCHMARKS.md)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time

from bench.common import docker_host


def _first(path: str, key: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"\n')
    except OSError:
        pass
    return "unknown"


def _version(argv: list[str]) -> str:
    if not shutil.which(argv[0]):
        return "not installed"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return "unavailable"
    return proc.stdout.strip() or "unknown"


def describe() -> list[str]:
    """Lines naming date, CPU, cores, memory, kernel, OS, Python and the peers' versions."""
    mem_kib = int(_first("/proc/meminfo", "MemTotal").split()[0]) if os.path.exists("/proc/meminfo") else 0
    docker = docker_host()
    docker_version = _version(["docker", "-H", docker, "version", "--format", "{{.Server.Version}}"]) \
        if docker else "no dockerd reachable"
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"CPU: {_first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores",
        f"memory: {mem_kib / 1024 / 1024:.1f} GiB",
        f"kernel: {platform.release()}; OS: {_first('/etc/os-release', 'PRETTY_NAME')}",
        f"python: {platform.python_version()}",
        f"dockerd: {docker_version}; podman: {_version(['podman', '--version'])}",
    ]
