"""``berth system prune`` prints what docker's CLI prints against the same berthd: the bulleted
prompt, one ``Deleted ...:`` section per prune that removed something (containers, networks,
volumes with ``--volumes``, images, build cache) and the summed ``Total reclaimed space``.

The daemon state is prepared twice on one berthd (a created and an exited container, an unused
network, an anonymous and a named volume, a dangling and a tagged committed image); docker prunes
the first, berth the second, and the outputs must match once IDs and the round's names are masked.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest

from tests.daemon_fixture import BERTH
from tests.integration.test_images_acceptance import docker

pytestmark = pytest.mark.compat


def prepare(d, busybox_tar, tag: str) -> None:
    """Objects every kind of prune removes, with names ending in ``tag``."""
    if d.cli("image", "inspect", "busybox:latest").returncode != 0:
        d.ok("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
    d.ok("create", "--name", f"created-{tag}", "busybox", "true")
    d.ok("run", "--name", f"exited-{tag}", "busybox", "true")
    d.ok("network", "create", f"net-{tag}")
    d.ok("volume", "create")
    d.ok("volume", "create", f"vol-{tag}")
    writer = d.ok("create", "busybox", "sh", "-c", "echo hi > /f").strip()
    d.ok("start", "-a", writer)
    d.ok("commit", writer)
    d.ok("commit", writer, f"img-{tag}:v1")
    d.ok("rm", writer)


def masked(text: str, tag: str) -> str:
    return re.sub(r"[0-9a-f]{64}", "<id>", text).replace(tag, "<tag>")


def berth(host: str, *args: str, input: str) -> subprocess.CompletedProcess:
    return subprocess.run([BERTH, "-H", host, *args], input=input, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flags", [[], ["-a"], ["--volumes"], ["-a", "--volumes", "-f"]],
                         ids=["plain", "all", "volumes", "all-volumes-force"])
def test_system_prune_prints_what_docker_prints(daemon, busybox_tar, flags):
    results = []
    for cli in ("docker", "berth"):
        tag = uuid.uuid4().hex[:10]
        prepare(daemon, busybox_tar, tag)
        if cli == "docker":
            out = docker(daemon.host, "system", "prune", *flags, input="y\n", check=False)
        else:
            out = berth(daemon.host, "system", "prune", *flags, input="y\n")
        results.append((out.returncode, masked(out.stdout, tag), out.stderr))
    theirs, mine = results
    assert mine == theirs
    assert "Deleted Containers:\n<id>\n<id>\n\nDeleted Networks:\nnet-<tag>\n\n" in mine[1]
    assert re.search(r"\n\nDeleted Images:\n(untagged|deleted): .*\n\nTotal reclaimed space: \S+\n$", mine[1], re.S)
    assert ("Deleted Volumes:\n" in mine[1]) == ("--volumes" in flags)


def test_system_prune_prompt_and_refusals_as_docker(bdaemon):
    for args, answer in ((["system", "prune"], "n\n"), (["system", "prune", "-a", "--volumes"], "\n"),
                         (["system", "prune", "--volumes", "--filter", "until=1h"], "y\n"),
                         (["system", "prune", "-f", "--filter", "bogus=1"], "")):
        theirs = docker(bdaemon.host, *args, input=answer, check=False)
        mine = berth(bdaemon.host, *args, input=answer)
        assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    shown = berth(bdaemon.host, "system", "prune", "-a", "--volumes", input="n\n").stdout
    assert shown == ("WARNING! This will remove:\n  - all stopped containers\n"
                     "  - all networks not used by at least one container\n"
                     "  - all anonymous volumes not used by at least one container\n"
                     "  - all images without at least one container associated to them\n"
                     "  - all build cache\n\nAre you sure you want to continue? [y/N] ")
    assert bdaemon.ok("image", "inspect", "-f", "{{.Id}}", "busybox:latest")
