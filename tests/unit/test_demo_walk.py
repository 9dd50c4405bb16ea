"""The demo's walker and pty driver, with /bin/sh standing in for the berth CLI (real processes and
a real pty; no daemon): outcomes, checks, captured values, the summary and the exit status."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from contrib.demo.ptysession import PtySession, PtyTimeout
from contrib.demo.walk import Section, Step, Walker, fill


def sh(script: str, **kw) -> Step:
    """A "berth" step whose CLI is /bin/sh: runs ``sh -c script``."""
    return Step("berth", ("-c", script), **kw)


@pytest.fixture
def walker(tmp_path: Path) -> Walker:
    return Walker("unix:///nonexistent.sock", tmp_path, "/bin/sh", out=io.StringIO(), color=False)


@pytest.mark.parametrize("step, ok, why", [
    (sh("echo hello"), True, ""),
    (sh("echo hello", expect="^hel+o$"), True, ""),
    (sh("exit 3", exit_code=3), True, ""),
    (sh("exit 3"), False, "exit status 3, expected 0"),
    (sh("echo bye", expect="hello"), False, "output does not show 'hello'"),
    (sh("echo id=42", capture="x", capture_re=r"id=(\d+)"), True, ""),
    (sh("echo nothing", capture="x", capture_re=r"id=(\d+)"), False, r"output does not match 'id=(\\d+)'"),
    (sh("echo @{unknown}"), False, "no value for @{unknown}"),
    (sh("sleep 5", timeout=0.3), False, "still running after 0 s (killed)"),
    (Step("fetch", ("http://127.0.0.1:9/",)), False, ""),
    (Step("nonsense"), False, "unknown step kind 'nonsense'"),
])
def test_step_outcomes(walker, step, ok, why):
    outcome = walker.step(1, step)
    assert outcome.ok is ok
    if why:
        assert outcome.why == why


def test_captured_values_feed_later_steps(walker):
    walker.step(1, sh("echo 'image sha256:abc'", capture="image", capture_re=r"(sha256:\w+)"))
    outcome = walker.step(1, sh("echo tagged @{image}", expect="tagged sha256:abc$"))
    assert outcome.ok and outcome.command == "berth -c 'echo tagged sha256:abc'"
    assert fill("@{image}/@{workdir}", walker.values) == f"sha256:abc/{walker.workdir}"


def test_commands_are_printed_before_their_output(walker):
    walker.step(2, Step("berth", ("-c", "echo out"), note="why this runs", cwd="."))
    assert walker.out.getvalue() == "# why this runs\n$ cd . && berth -c 'echo out'\nout\n"


def test_show_limits_the_printed_lines_not_the_checks(walker):
    outcome = walker.step(1, sh("seq 1 50", show=5, expect="^50$"))
    assert outcome.ok
    assert walker.out.getvalue().splitlines()[1:] == ["1", "2", "3", "4", "5", "... (45 more lines)"]


def test_file_and_action_steps(walker):
    assert walker.step(1, Step("file", ("ctx/Dockerfile",), text="FROM @{base}\n")).ok is False
    walker.values["base"] = "busybox"
    assert walker.step(1, Step("file", ("ctx/Dockerfile",), text="FROM @{base}\n")).ok
    assert (walker.workdir / "ctx" / "Dockerfile").read_text() == "FROM busybox\n"
    assert [p.name for p in (walker.workdir / "ctx").iterdir()] == ["Dockerfile"]

    def port(values: dict[str, str]) -> str:
        values["port"] = "8000"
        return "picked"

    assert walker.step(1, Step("action", run=port)).ok and walker.values["port"] == "8000"

    def broken(values: dict[str, str]) -> str:
        raise RuntimeError("no mirror")

    outcome = walker.step(1, Step("action", ("apt-get download cowsay",), run=broken))
    assert (outcome.ok, outcome.why, outcome.command) == (False, "no mirror", "apt-get download cowsay")


def test_walk_goes_on_after_a_failure_and_sums_up(walker):
    sections = (Section(1, "one", (sh("true"), sh("false"), sh("true"))), Section(2, "two", (sh("true"),)))
    assert walker.walk(sections) is False
    assert [o.ok for o in walker.outcomes] == [True, False, True, True]
    summary = walker.summary()
    assert "1 FAILED" in summary and "✗ berth -c false: exit status 1, expected 0" in summary
    assert summary.rstrip().endswith("3/4 steps succeeded")
    walker.outcomes.clear()
    assert walker.walk(sections[1:]) is True


def _shell(tmp_path: Path) -> PtySession:
    env = {"PATH": os.environ["PATH"], "PS1": "demo$ ", "HOME": str(tmp_path), "ENV": "/dev/null"}
    return PtySession(["/bin/sh", "-i"], env, tmp_path, echo=io.StringIO())


def test_pty_session_is_a_terminal_and_returns_the_status(tmp_path):
    session = _shell(tmp_path)
    try:
        session.expect(r"demo\$ $", timeout=10)
        session.send("tty; echo $((6 * 7))")
        session.expect(r"^/dev/pts/\d+\n42\n", timeout=10)
        session.send("exit 3")
        assert session.wait(timeout=10) == 3
    finally:
        session.close()
    assert "42" in session.transcript and "\r" not in session.transcript


def test_pty_session_times_out_with_the_output_seen(tmp_path):
    session = _shell(tmp_path)
    try:
        session.expect(r"demo\$ $", timeout=10)
        session.send("echo something else")
        with pytest.raises(PtyTimeout, match="something else"):
            session.expect("never printed", timeout=0.5)
    finally:
        session.close()
