"""The demo's plan (sections of steps, plain data) and the walker that runs it.

A :class:`Step` is one command the reader sees: a ``berth`` command, a dialogue through a pty
(``berth run -it``), a file written into a build context, a page fetched from the host, or a
Python action (fetching .deb files). Values one step prints (an image ID, a port) are captured
under a name and used by later steps as ``@{name}``. The walker prints each command before
running it, streams its output, checks the exit status and the text it must show, records the
outcome, and ends with a summary; a failed step does not stop the walk.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contrib.demo.ptysession import PtySession

_PLACEHOLDER = re.compile(r"@\{(\w+)\}")
KINDS = ("berth", "pty", "file", "fetch", "action")


@dataclass(frozen=True)
class Step:
    """One step of the course.

    ``kind``: ``berth`` (``argv`` are berth's arguments), ``pty`` (``argv`` run on a terminal,
    ``dialogue`` is ``(line to type, regex to wait for)`` pairs), ``file`` (``argv[0]`` is a
    path relative to the work directory, ``text`` its content), ``fetch`` (``argv[0]`` is a URL
    fetched from the host) or ``action`` (``run`` is called with the walker's variables and may add
    to them; ``argv[0]``, when given, is the shell command it stands for).
    ``expect``: a regex the output must contain; ``exit_code``: the status it must end with;
    ``capture``: a variable name to store the output in (stripped; ``capture_re``'s first group
    when given); ``seed``: the course command this step shows; ``note``: one line printed before;
    ``cwd``: the directory (relative to the work directory) a command runs in; ``show``: print at
    most this many lines of a ``berth`` step's output (0: all; the checks see all of it).
    """

    kind: str
    argv: tuple[str, ...] = ()
    note: str = ""
    seed: str = ""
    expect: str = ""
    exit_code: int = 0
    capture: str = ""
    capture_re: str = ""
    dialogue: tuple[tuple[str, str], ...] = ()
    text: str = ""
    run: Callable[[dict[str, str]], str] | None = field(default=None, compare=False)
    cwd: str = ""
    show: int = 0
    timeout: float = 600

    def render(self, values: dict[str, str]) -> str:
        """The command as the reader sees it, placeholders filled in."""
        argv = [fill(a, values) for a in self.argv]
        if self.kind in ("berth", "pty"):
            return (f"cd {self.cwd} && " if self.cwd else "") + "berth " + shlex.join(argv)
        if self.kind == "file":
            return f"cat > {argv[0]}"
        if self.kind == "fetch":
            return f"curl {argv[0]}"
        return argv[0] if argv else ""


@dataclass(frozen=True)
class Section:
    """A numbered part of the course (``number``, ``title``) and its steps."""

    number: int
    title: str
    steps: tuple[Step, ...]


@dataclass
class Outcome:
    """What happened to one step."""

    section: int
    command: str
    ok: bool
    seconds: float
    why: str = ""


def fill(text: str, values: dict[str, str]) -> str:
    """Replace every ``@{name}`` in ``text`` by ``values[name]``; raises KeyError when unknown."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


class StepFailed(Exception):
    """A step ended with the wrong status or without the text it must show."""


class Walker:
    """Runs sections in ``workdir`` against the berthd at ``host``; ``out`` is where it prints."""

    def __init__(self, host: str, workdir: Path, berth: str, out=None, color: bool | None = None) -> None:
        self.env = {**os.environ, "BERTH_HOST": host, "DOCKER_HOST": host}
        self.workdir = workdir
        self.berth = berth
        self.out = out or sys.stdout
        self.color = self.out.isatty() if color is None else color
        self.values: dict[str, str] = {"workdir": str(workdir)}
        self.outcomes: list[Outcome] = []

    def say(self, text: str, style: str = "") -> None:
        """Print one line of the walk's own (a command, a note, a failure), coloured on a terminal."""
        codes = {"bold": "1", "dim": "2", "red": "31", "green": "32", "cyan": "36"}
        if self.color and style:
            text = f"\033[{codes[style]}m{text}\033[0m"
        self.out.write(text + "\n")
        self.out.flush()

    def walk(self, sections: Sequence[Section]) -> bool:
        """Run every step of ``sections``; returns True when all succeeded."""
        for section in sections:
            self.say(f"\n=== {section.number}. {section.title}", "bold")
            for step in section.steps:
                self.step(section.number, step)
        return all(o.ok for o in self.outcomes)

    def step(self, section: int, step: Step) -> Outcome:
        """Print, run and check one step, and record its outcome."""
        if step.note:
            self.say(f"# {step.note}", "dim")
        try:
            command = step.render(self.values)
        except KeyError as exc:
            command = step.render({**self.values, exc.args[0]: f"<{exc.args[0]}?>"})
        if command:
            self.say(f"$ {command}", "cyan")
        started = time.monotonic()
        try:
            output = self._run(step)
            self._check(step, output)
            outcome = Outcome(section, command, True, time.monotonic() - started)
        except (StepFailed, OSError, KeyError, subprocess.SubprocessError, RuntimeError) as exc:
            why = str(exc) if not isinstance(exc, KeyError) else f"no value for @{{{exc.args[0]}}}"
            outcome = Outcome(section, command, False, time.monotonic() - started, why)
            self.say(f"✗ {why}", "red")
        self.outcomes.append(outcome)
        return outcome

    def _run(self, step: Step) -> str:
        argv = [fill(a, self.values) for a in step.argv]
        if step.kind == "berth":
            return self._command([self.berth, *argv], step)
        if step.kind == "pty":
            return self._pty([self.berth, *argv], step)
        if step.kind == "file":
            return self._write(argv[0], fill(step.text, self.values))
        if step.kind == "fetch":
            # No proxy: the page is on this machine, whatever http_proxy says.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(argv[0], timeout=10) as reply:
                body = reply.read().decode(errors="replace")
            self.out.write(body if body.endswith("\n") else body + "\n")
            return body
        if step.kind == "action" and step.run is not None:
            text = step.run(self.values)
            if text:
                self.out.write(text if text.endswith("\n") else text + "\n")
            return text
        raise StepFailed(f"unknown step kind {step.kind!r}")

    def _command(self, argv: list[str], step: Step) -> str:
        proc = subprocess.Popen(argv, cwd=self.workdir / step.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + step.timeout
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        chunks = []
        while True:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                proc.kill()
                proc.wait()
                raise StepFailed(f"still running after {step.timeout:.0f} s (killed)")
            data = os.read(fd, 65536)
            if not data:
                break
            text = decoder.decode(data)
            chunks.append(text)
            self._echo(text, step.show, "".join(chunks))
        proc.stdout.close()
        status = proc.wait()
        hidden = "".join(chunks).count("\n") - step.show
        if step.show and hidden > 0:
            self.say(f"... ({hidden} more lines)", "dim")
        if status != step.exit_code:
            raise StepFailed(f"exit status {status}, expected {step.exit_code}")
        return "".join(chunks)

    def _echo(self, text: str, limit: int, so_far: str) -> None:
        """Print ``text`` (the newest part of ``so_far``) unless ``limit`` lines are already out."""
        if limit:
            before = so_far[:len(so_far) - len(text)].count("\n")
            if before >= limit:
                return
            text = "".join(text.splitlines(keepends=True)[:limit - before])
        self.out.write(text)
        self.out.flush()

    def _pty(self, argv: list[str], step: Step) -> str:
        session = PtySession(argv, self.env, self.workdir / step.cwd, echo=self.out)
        try:
            for line, wait_for in step.dialogue:
                if line:
                    session.send(fill(line, self.values))
                session.expect(fill(wait_for, self.values), timeout=60)
            status = session.wait(timeout=60)
        finally:
            session.close()
        if status != step.exit_code:
            raise StepFailed(f"exit status {status}, expected {step.exit_code}")
        return session.transcript

    def _write(self, rel: str, text: str) -> str:
        path = self.workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        self.out.write(text if text.endswith("\n") else text + "\n")
        return text

    def _check(self, step: Step, output: str) -> None:
        if step.expect and not re.search(fill(step.expect, self.values), output, re.MULTILINE):
            raise StepFailed(f"output does not show {step.expect!r}")
        if step.capture:
            value = output.strip()
            if step.capture_re:
                found = re.search(step.capture_re, output, re.MULTILINE)
                if not found:
                    raise StepFailed(f"output does not match {step.capture_re!r}")
                value = found.group(1)
            self.values[step.capture] = value

    def summary(self) -> str:
        """A few lines: steps per section that ran and failed, and each failure's command."""
        lines = ["", "=== Summary"]
        for number in sorted({o.section for o in self.outcomes}):
            mine = [o for o in self.outcomes if o.section == number]
            failed = [o for o in mine if not o.ok]
            seconds = sum(o.seconds for o in mine)
            mark = "ok" if not failed else f"{len(failed)} FAILED"
            lines.append(f"  {number}. {len(mine):3d} steps  {seconds:6.1f} s  {mark}")
            lines += [f"       ✗ {o.command}: {o.why}" for o in failed]
        total = len(self.outcomes)
        bad = sum(not o.ok for o in self.outcomes)
        lines.append(f"  {total - bad}/{total} steps succeeded")
        return "\n".join(lines)
