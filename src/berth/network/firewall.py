"""iptables rules for bridge networks, in berth's own chains.

Behaviour follows "Packet filtering and firewalls" and "Use bridge networks" in docker's docs:

* traffic between two endpoints of one bridge passes, also when the FORWARD policy is DROP and
  br_netfilter makes bridged frames traverse iptables (``-i BR -o BR -j ACCEPT``);
* traffic from one berth bridge to another is dropped (two-stage isolation, as docker's
  DOCKER-ISOLATION-STAGE-1/2): stage 1 sends everything leaving a bridge for elsewhere to stage 2,
  stage 2 drops whatever enters another berth bridge;
* an ``--internal`` network gets no traffic in or out of its bridge;
* other networks may leave through the host (``-i BR ! -o BR -j ACCEPT``, replies via conntrack)
  and are masqueraded (``-s SUBNET ! -o BR -j MASQUERADE`` in nat).

Chains: ``<P>-FORWARD`` (jumped to from FORWARD), ``<P>-ISOLATION-1``/``-2`` and, in nat,
``<P>-POSTROUTING`` (jumped to from POSTROUTING); ``P`` is ``BERTH`` unless a test picks its own.
Every change is idempotent (``iptables -C`` before ``-A``). The firewall is not a hot path, so it
shells out to iptables (the iptables-nft flavour works too); without iptables every method is a
no-op and ``available`` is False.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from ipaddress import IPv4Network

from berth.errors import SystemError_

log = logging.getLogger(__name__)

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


class Firewall:
    """berth's iptables chains for one chain-name ``prefix`` (default ``BERTH``).

    ``iptables``: the binary to run (default: ``iptables`` on PATH). Methods raise SystemError_
    with iptables' stderr when a command fails.
    """

    def __init__(self, prefix: str = "BERTH", iptables: str | None = None) -> None:
        self.prefix = prefix
        self.binary = iptables or shutil.which("iptables")
        self.available = self.binary is not None and self._run("filter", "-S", "FORWARD", check=False) == 0
        if not self.available:
            log.warning("iptables is not usable: berth networks get no firewall rules")

    @property
    def forward_chain(self) -> str:
        """Name of the filter chain FORWARD jumps to."""
        return f"{self.prefix}-FORWARD"

    @property
    def isolation_chains(self) -> tuple[str, str]:
        """Names of the stage-1 and stage-2 isolation chains."""
        return f"{self.prefix}-ISOLATION-1", f"{self.prefix}-ISOLATION-2"

    @property
    def postrouting_chain(self) -> str:
        """Name of the nat chain POSTROUTING jumps to."""
        return f"{self.prefix}-POSTROUTING"

    # ---- plumbing

    def _run(self, table: str, *args: str, check: bool = True) -> int:
        argv = [self.binary or "iptables", "-w", "-t", table, *args]
        result = subprocess.run(argv, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise SystemError_(f"{shlex.join(argv)} failed: {result.stderr.strip()}")
        return result.returncode

    def _output(self, table: str, *args: str) -> str:
        argv = [self.binary or "iptables", "-w", "-t", table, *args]
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            return ""
        return result.stdout

    def _ensure_chain(self, table: str, chain: str) -> None:
        if self._run(table, "-n", "-L", chain, check=False) != 0:
            self._run(table, "-N", chain)

    def _ensure_rule(self, table: str, chain: str, *spec: str, first: bool = False) -> None:
        if self._run(table, "-C", chain, *spec, check=False) != 0:
            if first:
                self._run(table, "-I", chain, "1", *spec)
            else:
                self._run(table, "-A", chain, *spec)

    # ---- public API

    def setup(self) -> None:
        """Create berth's chains and hook them into FORWARD and POSTROUTING (once; idempotent)."""
        if not self.available:
            return
        stage1, stage2 = self.isolation_chains
        for chain in (self.forward_chain, stage1, stage2):
            self._ensure_chain("filter", chain)
        self._ensure_chain("nat", self.postrouting_chain)
        self._ensure_rule("filter", self.forward_chain, "-j", stage1, first=True)
        self._ensure_rule("filter", "FORWARD", "-j", self.forward_chain, first=True)
        self._ensure_rule("nat", "POSTROUTING", "-j", self.postrouting_chain, first=True)

    def add_network(self, bridge: str, subnet: IPv4Network, internal: bool = False, masquerade: bool = True) -> None:
        """Install the rules of one bridge network (``bridge``: its Linux bridge, ``subnet``: its
        IPv4 subnet). ``internal``: no traffic leaves or enters the bridge; ``masquerade``: NAT the
        subnet's outbound traffic (ignored for internal networks). Idempotent; calls ``setup``."""
        if not self.available:
            return
        self.setup()
        stage1, stage2 = self.isolation_chains
        if internal:
            self._ensure_rule("filter", stage1, "-i", bridge, "!", "-o", bridge, "-j", "DROP")
            self._ensure_rule("filter", stage1, "!", "-i", bridge, "-o", bridge, "-j", "DROP")
        else:
            self._ensure_rule("filter", stage1, "-i", bridge, "!", "-o", bridge, "-j", stage2)
        self._ensure_rule("filter", stage2, "-o", bridge, "-j", "DROP")
        self._ensure_rule("filter", self.forward_chain, "-i", bridge, "-o", bridge, "-j", "ACCEPT")
        if internal:
            return
        self._ensure_rule(
            "filter", self.forward_chain,
            "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT",
        )
        self._ensure_rule("filter", self.forward_chain, "-i", bridge, "!", "-o", bridge, "-j", "ACCEPT")
        if masquerade:
            self._ensure_rule(
                "nat", self.postrouting_chain, "-s", str(subnet), "!", "-o", bridge, "-j", "MASQUERADE"
            )

    def remove_network(self, bridge: str) -> None:
        """Delete every rule of berth's chains that names ``bridge`` as input or output interface."""
        if not self.available:
            return
        for table, chain in self._chains():
            for rule in self._rules(table, chain):
                if _names_interface(rule, bridge):
                    self._run(table, "-D", chain, *rule[2:], check=False)

    def network_rules(self, bridge: str) -> list[str]:
        """The rules (``iptables -S`` lines, ``-t nat`` ones prefixed ``nat:``) naming ``bridge``."""
        found = []
        for table, chain in self._chains():
            for rule in self._rules(table, chain):
                if _names_interface(rule, bridge):
                    found.append(("nat: " if table == "nat" else "") + " ".join(rule))
        return found

    def teardown_all(self) -> None:
        """Remove the hooks and all of berth's chains (with their rules) for this prefix."""
        if not self.available:
            return
        self._run("filter", "-D", "FORWARD", "-j", self.forward_chain, check=False)
        self._run("nat", "-D", "POSTROUTING", "-j", self.postrouting_chain, check=False)
        for table, chain in self._chains():
            self._run(table, "-F", chain, check=False)
        for table, chain in self._chains():
            self._run(table, "-X", chain, check=False)

    def chains_present(self) -> list[str]:
        """berth chains of this prefix that exist now (``table:chain``)."""
        return [f"{t}:{c}" for t, c in self._chains() if self._run(t, "-n", "-L", c, check=False) == 0]

    def _chains(self) -> list[tuple[str, str]]:
        stage1, stage2 = self.isolation_chains
        return [("filter", self.forward_chain), ("filter", stage1), ("filter", stage2), ("nat", self.postrouting_chain)]

    def _rules(self, table: str, chain: str) -> list[list[str]]:
        lines = self._output(table, "-S", chain).splitlines()
        return [shlex.split(line) for line in lines if line.startswith("-A ")]


def _names_interface(rule: list[str], ifname: str) -> bool:
    return any(flag in ("-i", "-o") and value == ifname for flag, value in zip(rule, rule[1:], strict=False))


def ip_forward_enabled() -> bool:
    """True when the kernel forwards IPv4 (``/proc/sys/net/ipv4/ip_forward`` is 1)."""
    with open(IP_FORWARD) as handle:
        return handle.read().strip() == "1"


def set_ip_forward(enabled: bool) -> bool:
    """Set ``net.ipv4.ip_forward`` (docker turns it on at start-up); returns the previous value."""
    previous = ip_forward_enabled()
    with open(IP_FORWARD, "w") as handle:
        handle.write("1\n" if enabled else "0\n")
    return previous
