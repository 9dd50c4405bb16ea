"""Issue #7, acceptance 5: every seed command in the course text that does not need Compose is in
docs/seed-commands.md with the berth command that does it and whether the demo covers it; and
where the table says the demo covers a command in section N, section N really runs it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from contrib.demo import course

from tests.unit.test_demo_plan import dummy_actions

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "seed-commands.md"
SEED_PLACES = [os.environ.get("BERTH_SEED_COURSE", ""), str(ROOT.parent / "shared/seed/docker-course-fr.txt"),
               "/work/shared/seed/docker-course-fr.txt"]
# What runs a command: the docker CLI, ping, curl, or a shell prompt inside a container.
COMMAND = re.compile(r"^(docker(?=\s|$)|ping |curl |root@[0-9a-f]+:/# \S)")
COMPOSE = re.compile(r"^docker(-compose| compose)\b")


def seed_text() -> str:
    for place in SEED_PLACES:
        if place and os.path.exists(place):
            return Path(place).read_text()
    pytest.skip("the seed course text is not on this machine")


def _normal(line: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"^\\?\$\s*", "", line.strip())).strip()


def seed_commands(text: str) -> list[str]:
    """Commands of the course: lines of its code blocks and ``$ docker ...`` lines outside them
    (a leading ``$`` or ``\\$`` dropped, ``\\`` continuations joined), in order, once each;
    output lines, host shell commands (``git``, ``mkdir``) and Compose left out."""
    lines: list[str] = []
    in_block = False
    for raw in text.splitlines():
        if raw.strip().startswith("```"):
            in_block = not in_block
            continue
        if in_block or re.match(r"^\s*\\?\$\s*docker\b", raw):
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + raw.strip()
            else:
                lines.append(raw)
        elif re.match(r"^\s*-\s+curl ", raw):  # "curl localhost:49153" is shown in a list
            lines.append(raw.strip()[1:])
    found: list[str] = []
    for line in map(_normal, lines):
        if COMMAND.match(line) and not COMPOSE.match(line) and line not in found:
            found.append(line)
    return found


def table_rows() -> list[tuple[str, str, str]]:
    """(seed command, berth cell, demo cell) of each row of the table."""
    rows = []
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows.append((cells[0][1:-1], cells[1], cells[2]))
    return rows


def test_seed_commands_are_found():
    """The extraction sees the course's commands (so an empty match cannot pass the next test)."""
    commands = seed_commands(seed_text())
    for expected in ("docker images", "docker search spark", "docker pull redis", "docker run hello-world",
                     "docker run -it ubuntu", "docker diff f461e2e7afff", "docker commit <yourContainerId>",
                     "docker tag <newImageId> cowsay", "docker build -t cowsay .",
                     "docker build https://github.com/docker/rootfs.git#container:docker", "docker image ls",
                     "docker image prune", "docker history mycowsay", "docker login",
                     "docker push mydockeraccount/cowsay", "docker exec -it f136fa721110 bash",
                     "docker run -d -P nginx", "docker port <containerID> 80", "docker run -d -p 8000:80 nginx",
                     "docker inspect --format '{{ .NetworkSettings.IPAddress }}' <yourContainerID>",
                     "ping 172.17.0.2", "docker network create -d bridge my_bridge",
                     "docker network connect my_bridge web", "docker volume create my-vol",
                     "docker run -d --name devtest --mount source=my-vol,target=/app debian",
                     'docker run -d -it --name devtest --mount type=bind,source="$(pwd)"/code,target=/app '
                     "debian:latext", "root@f461e2e7afff:/# apt-get install cowsay", "curl localhost:49153"):
        assert expected in commands
    assert not [c for c in commands if COMPOSE.match(c)]


def test_every_seed_command_is_in_the_table():
    """Acceptance 5: none is missing, each has a berth cell and a demo cell."""
    rows = {seed: (berth, demo) for seed, berth, demo in table_rows()}
    missing = [c for c in seed_commands(seed_text()) if c not in rows]
    assert missing == []
    for seed, (berth, demo) in rows.items():
        assert berth, seed
        assert re.match(r"^(yes §[1-6]|no)\b", demo), (seed, demo)


def test_the_course_commands_inline_are_in_the_table():
    """Commands the course names in its text rather than in code blocks (the issue's list)."""
    rows = {seed for seed, _, _ in table_rows()}
    for name in ("ls", "start", "stop", "restart", "rm", "prune", "logs", "stats", "top"):
        assert f"docker container {name}" in rows
    assert {"docker image ls -a", "docker image rm", "docker build --no-cache ..."} <= rows


def _subcommand(argv: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    management = {"image", "container", "network", "volume", "system"}
    return tuple(argv[:2]) if argv and argv[0] in management and len(argv) > 1 else tuple(argv[:1])


def test_rows_said_covered_are_run_by_that_section():
    """A "yes §N" row whose berth command is a ``berth`` command names one that section N runs."""
    sections = {s.number: s for s in course.course(dummy_actions())}
    for seed, berth, demo in table_rows():
        found = re.match(r"^yes §(\d)", demo)
        command = re.search(r"`berth ([^`]*)`", berth)
        if not found or not command or not berth.startswith("`berth"):
            continue
        words = [w for w in command.group(1).split() if w != "COMMAND"]
        want = _subcommand(words)
        run = {_subcommand(step.argv)[:len(want)] for step in sections[int(found.group(1))].steps
               if step.kind in ("berth", "pty")}
        assert want in run, (seed, want, int(found.group(1)))
