"""Helpers for the container acceptance tests: unique names that are always removed, polling, and a
process on a real pseudo-terminal to type into (what a user at a terminal does)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

RUN = uuid.uuid4().hex[:8]


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``predicate`` every 50 ms until it returns a true value (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def named(daemon: Any, prefix: str = "acc") -> Iterator[Callable[[], str]]:
    """A factory of unique container names (``<prefix>-<run>-<n>``); every container made under one
    of them is force-removed afterwards, whatever the test did."""
    made: list[str] = []

    def new() -> str:
        made.append(f"{prefix}-{RUN}-{len(made)}")
        return made[-1]

    try:
        yield new
    finally:
        if made:
            daemon.cli("rm", "-f", *made)


def state(daemon: Any, name: str, template: str = "{{.State.Status}}") -> str:
    """``inspect -f TEMPLATE`` of a container (stripped; "" when it does not exist)."""
    return daemon.cli("inspect", "-f", template, name).stdout.strip()


def exists(daemon: Any, name: str) -> bool:
    """True when the daemon has a container called exactly ``name``."""
    return name in daemon.ok("ps", "-a", "--format", "{{.Names}}").split()


def popen(daemon: Any, *args: str) -> subprocess.Popen[str]:
    """``berth ARGS`` running in the background against ``daemon`` (text pipes)."""
    from tests.daemon_fixture import BERTH

    return subprocess.Popen([BERTH, *args], env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
