"""Issue #7's acceptance lines that a fast test can hold: README, Makefile, .ci/run, the demo module
and the bench runner agree, and BENCHMARKS.md holds a table from the runner. The demo itself runs
with ``make demo`` (minutes, on the machine's berthd), not in the suite; its plan is checked item by
item in test_demo_plan.py, the seed-command table (acceptance 5) in test_seed_commands.py."""

from __future__ import annotations

import re
from pathlib import Path

from bench.__main__ import TOPICS
from contrib.demo import course

from tests.unit.test_demo_plan import dummy_actions

ROOT = Path(__file__).resolve().parents[2]


def readme_fresh_machine_commands() -> list[str]:
    """The commands of README's "On a fresh machine" code block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## On a fresh machine.*?```sh\n(.*?)```", text, re.S)
    assert block, "README has no fresh-machine block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def make_target(name: str) -> list[str]:
    """The recipe lines (``@`` dropped) and prerequisites of a Makefile target."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(name)}:(.*)\n((?:\t.*\n)*)", text, re.M)
    assert found, f"Makefile has no {name} target"
    return found.group(1).split() + [line.strip().lstrip("@") for line in found.group(2).splitlines()]


def test_1_readme_demo_command_runs_the_demo_module():
    """1. On a clean clone, README's demo command succeeds end to end as root on this kind of
    machine, and a second run succeeds too (idempotent, cached base images). — README's first
    command is ``make demo``; it sets up, then runs ``python -m contrib.demo``, whose plan holds
    the six sections and cleans its own leftovers first (the run itself: ``make demo``)."""
    assert readme_fresh_machine_commands()[0] == "make demo"
    assert make_target("demo") == ["setup", ".venv/bin/python -m contrib.demo"]
    assert make_target("setup") == ["scripts/setup.sh"]
    assert (ROOT / "contrib" / "demo" / "__main__.py").exists()
    assert [s.number for s in course.course(dummy_actions())] == [1, 2, 3, 4, 5, 6]
    assert course.leftovers()
    assert make_target("clean-demo") == [".venv/bin/python -m contrib.demo --clean"]


def test_2_readme_test_command_is_what_ci_runs():
    """2. README's test command passes on a clean clone; `.ci/run` runs that same command."""
    commands = readme_fresh_machine_commands()
    assert commands[1] == "make test"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == "make test"
    assert make_target("test") == ["setup", ".venv/bin/python -m pytest -q -n 3 --dist loadfile"]


def test_4_bench_fits_ten_minutes_and_benchmarks_md_holds_its_table():
    """4. `bench/` runs in under 10 minutes and prints the ratio table; BENCHMARKS.md holds the
    latest one. — every topic has a script and a time budget, the budgets add up to less than 10
    minutes, and BENCHMARKS.md has a row for every topic beside its machine description."""
    assert sum(budget for _, budget in TOPICS) < 600
    for topic, _ in TOPICS:
        assert (ROOT / "bench" / f"{topic}.py").exists(), topic
    assert make_target("bench") == ["setup", ".venv/bin/python -m bench"]
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert "## Machine" in text and re.search(r"^\| topic \| case \| unit \| berth \|", text, re.M)
    reported = set(re.findall(r"^\| (\w+) \| ", text, re.M)) - {"topic"}
    assert reported == {topic for topic, _ in TOPICS}
