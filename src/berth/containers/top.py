"""``docker top``: the host's ``ps`` output restricted to a container's processes.

Behaviour of ``GET /containers/{id}/top?ps_args=`` (Engine API v1.41 "List processes running inside
a container", dockerd 20.10 as observed): ``ps`` runs on the host with ``ps_args`` split on spaces
(default ``-ef``) plus ``-q <pids>`` to narrow the listing, retried without ``-q`` when ``ps``
refuses the combination; the answer keeps the lines whose PID is one of the container's cgroup
processes. Errors: 409 ``Container X is not running``, 500 ``ps: <first line of ps's stderr>`` and
500 ``Couldn't find PID field in ps output``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from berth.containers.model import Container
from berth.errors import Conflict, SystemError_
from berth.runtime import cgroups

DEFAULT_PS_ARGS = "-ef"


def parse_ps(output: str, pids: list[int]) -> dict[str, Any]:
    """``{"Processes": [[...], ...] or None, "Titles": [...]}`` from ``ps`` output, keeping the lines whose
    PID column is in ``pids``. Each line is split into as many fields as there are titles, the last
    field taking the rest of the line (commands contain spaces).

    Raises SystemError_ (``Couldn't find PID field in ps output``) when no title is ``PID``.
    """
    lines = [line for line in output.splitlines() if line.strip()]
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise SystemError_("Couldn't find PID field in ps output")
    column = titles.index("PID")
    wanted = set(pids)
    processes: list[list[str]] = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[column])
        except (IndexError, ValueError):
            continue
        if pid in wanted:
            processes.append(fields)
    return {"Processes": processes or None, "Titles": titles}


async def _ps(args: list[str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec("ps", *args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def top(c: Container, ps_args: str = "") -> dict[str, Any]:
    """The ``ContainerTopResponse`` of ``c``. Raises Conflict (not running) or SystemError_."""
    if not c.state.running or c.state.status == "restarting":
        raise Conflict(f"Container {c.id} is not running")
    pids = await asyncio.to_thread(cgroups.pids, c.cgroup_path)
    args = [a for a in (ps_args or DEFAULT_PS_ARGS).split(" ") if a]
    code, out, err = (1, "", "")
    if pids:
        code, out, err = await _ps([*args, "-q", ",".join(str(p) for p in pids)])
    if code != 0:
        # some options (f, for one) cannot be combined with -q: list everything, filter here
        code, out, err = await _ps(args)
    if code != 0:
        first = err.splitlines()[0] if err.strip() else f"exit status {code}"
        raise SystemError_(f"ps: {first}")
    return parse_ps(out, pids)
