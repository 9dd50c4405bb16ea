"""berthd's configuration: command-line flags turned into one immutable value passed to the parts
that need it (no global configuration)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_ROOT = Path("/var/lib/berth")
DEFAULT_EXEC_ROOT = Path("/run/berth")
DEFAULT_SOCKET = "unix:///run/berth/berth.sock"


@dataclass(frozen=True)
class DaemonConfig:
    """Settings of one berthd (docs: "dockerd" reference for the flags of the same name)."""

    data_root: Path = DEFAULT_DATA_ROOT
    exec_root: Path = DEFAULT_EXEC_ROOT
    hosts: tuple[str, ...] = (DEFAULT_SOCKET,)
    log_level: str = "info"
    bridge_ip: str = ""                        # --bip: gateway address/prefix of the default bridge
    default_address_pools: tuple[str, ...] = ()  # --default-address-pool base=...,size=...
    bridge_name: str = "berth0"                # name of the default bridge's Linux link
    dns_forward: bool = False                  # forward unknown names to the host's resolvers
    default_runtime: str = "berth"
    extra: dict[str, str] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    """Parse berthd's command line. Exits 2 with a usage message on bad flags."""
    p = argparse.ArgumentParser(prog="berthd", description="berth daemon: serves the Docker Engine API")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="root of persisted state")
    p.add_argument("--exec-root", default=str(DEFAULT_EXEC_ROOT), help="root of runtime state (sockets)")
    p.add_argument("-H", "--host", action="append", default=[],
                   help="address to serve: unix:///path or tcp://127.0.0.1:PORT (repeatable)")
    p.add_argument("-l", "--log-level", default="info", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("--bip", default="", help="default bridge gateway address with prefix, e.g. 172.17.0.1/16")
    p.add_argument("--default-address-pool", action="append", default=[],
                   help="pool for network subnets: base=172.30.0.0/16,size=24 (repeatable)")
    p.add_argument("--bridge-name", default="berth0", help="Linux name of the default bridge")
    p.add_argument("--dns-forward", action="store_true",
                   help="forward names the embedded DNS does not know to the host's resolvers")
    p.add_argument("--default-runtime", default="berth", choices=["berth", "runc"])
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    a = p.parse_args(argv)
    if a.version:
        from berth import __version__
        print(f"berthd version {__version__}")
        raise SystemExit(0)
    hosts = tuple(a.host) or (f"unix://{Path(a.exec_root) / 'berth.sock'}",)
    return DaemonConfig(Path(a.data_root).resolve(), Path(a.exec_root).resolve(), hosts, a.log_level, a.bip,
                        tuple(a.default_address_pool), a.bridge_name, a.dns_forward, a.default_runtime)
