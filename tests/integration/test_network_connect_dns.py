"""A running container connected to a user network resolves names there (its resolv.conf and
/etc/hosts are rewritten in place, as dockerd does), and falls back after disconnect."""

from __future__ import annotations

import uuid


def test_connect_running_container_switches_resolv_conf_to_the_network_dns(shared_daemon):
    d = shared_daemon
    tag = uuid.uuid4().hex[:8]
    net, web, client = f"cnd-{tag}", f"cnd-web-{tag}", f"cnd-cli-{tag}"
    d.ok("network", "create", net)
    try:
        d.ok("run", "-d", "--name", web, "--network", net, "busybox", "httpd", "-f", "-p", "80")
        d.ok("run", "-d", "--name", client, "busybox", "sleep", "300")  # default bridge only
        before = d.ok("exec", client, "cat", "/etc/resolv.conf")
        gateway = d.ok("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", net).strip()
        assert f"nameserver {gateway}" not in before
        d.ok("network", "connect", net, client)
        after = d.ok("exec", client, "cat", "/etc/resolv.conf")
        assert f"nameserver {gateway}" in after
        ip = d.ok("exec", client, "cat", "/etc/hosts")
        addr = d.ok("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}', client).strip()
        assert addr in ip  # the new address is in the container's own /etc/hosts
        looked_up = d.cli("exec", client, "nslookup", web, gateway)
        assert looked_up.returncode == 0 and d.ok("inspect", "-f",
                                                   f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}',
                                                   web).strip() in looked_up.stdout
        d.ok("network", "disconnect", net, client)
        assert f"nameserver {gateway}" not in d.ok("exec", client, "cat", "/etc/resolv.conf")
    finally:
        d.cli("rm", "-f", web, client)
        d.cli("network", "rm", net)
