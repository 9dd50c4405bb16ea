"""The build plan: stage selection with --target, dependencies, step numbering; RUN argv and build args."""

from __future__ import annotations

import pytest

from berth.build.commands import to_command
from berth.build.dispatch_run import run_argv
from berth.build.instructions import DockerfileError
from berth.build.job import StageState
from berth.build.parser import parse
from berth.build.plan import make_plan, stage_index

MULTI = """\
ARG BASE=busybox
FROM $BASE AS deps
RUN echo deps > /deps
FROM busybox AS unused
RUN exit 1
FROM busybox AS tools
RUN echo tools > /tools
FROM deps AS final
COPY --from=tools /tools /tools
COPY --from=0 /deps /deps2
"""


def test_from_an_earlier_stage_by_index():
    plan = make_plan(parse("FROM busybox\nRUN true\nFROM 0\n"), {})
    assert plan.stages[1].base_stage == 0 and plan.build == [0, 1]


def test_only_needed_stages_are_built():
    plan = make_plan(parse(MULTI), {})
    assert [p.stage.name for p in plan.stages] == ["deps", "unused", "tools", "final"]
    assert plan.build == [0, 2, 3]
    final = plan.stages[3]
    assert final.base_stage == 0 and final.needs == {0, 2}
    assert plan.stages[0].base == "busybox"  # expanded with the meta ARG
    # Steps: 1 meta ARG, then FROM+instructions of every stage up to the target.
    assert [p.first_step for p in plan.stages] == [2, 4, 6, 8]
    assert plan.total_steps == 10


def test_target_cuts_the_dockerfile_and_counts_labels():
    plan = make_plan(parse(MULTI), {"BASE": "alpine"}, target="TOOLS", labels={"b": "2", "a": "1"})
    assert [p.stage.name for p in plan.stages] == ["deps", "unused", "tools"]
    assert plan.build == [2] and plan.target.stage.name == "tools"
    assert plan.stages[0].base == "alpine"
    assert plan.label_steps == [("a", "1"), ("b", "2")]
    assert plan.total_steps == 7 + 2


@pytest.mark.parametrize("text, target, message", [
    (MULTI, "nosuch", "failed to reach build target nosuch in Dockerfile"),
    ("ARG X\n", "", "no build stage in current context"),
    ("FROM busybox AS foo\nRUN true\nFROM busybox AS foo\n", "", "foo stage name already used"),
    ("FROM busybox AS Foo\nFROM busybox AS bar\nFROM busybox AS FOO\n", "", "foo stage name already used"),
])
def test_plan_errors(text, target, message):
    with pytest.raises(DockerfileError) as err:
        make_plan(parse(text), {}, target=target)
    assert err.value.reason == message


def test_a_repeated_stage_name_after_the_target_is_not_seen():
    plan = make_plan(parse("FROM busybox AS foo\nFROM busybox AS foo\n"), {}, target="foo")
    assert [p.stage.index for p in plan.stages] == [0]


def test_stage_references():
    stages = [p.stage for p in make_plan(parse(MULTI), {}).stages]
    assert stage_index(stages, "Deps", 3) == 0
    assert stage_index(stages, "1", 3) == 1
    assert stage_index(stages, "3", 3) is None          # not an earlier stage
    assert stage_index(stages, "final", 3) is None      # itself: an image name then
    assert stage_index(stages, "0", 3, by_number=False) is None


@pytest.mark.parametrize("line, expected", [
    ('RUN echo "a b"', ["/bin/sh", "-c", 'echo "a b"']),
    ('RUN ["echo", "x"]', ["echo", "x"]),
    ("RUN <<EOF\necho one\necho two\nEOF", ["/bin/sh", "-c", "echo one\necho two\n"]),
    ("RUN <<-EOF\n\techo tab\n\tEOF", ["/bin/sh", "-c", "echo tab\n"]),
    ("RUN cat <<EOF > /x\n$HOME\nEOF", ["/bin/sh", "-c", "cat <<EOF > /x\n$HOME\nEOF\n"]),
])
def test_run_argv(line, expected):
    command = to_command(parse("FROM x\n" + line + "\n").instructions[1])
    assert run_argv(["/bin/sh", "-c"], command) == expected


def _state(image_env: dict[str, str] | None = None, build_args: dict[str, str | None] | None = None,
           meta: dict[str, str] | None = None) -> StageState:
    state = StageState.begin(None, meta or {}, build_args or {}, "\\")
    state.scope.env.update(image_env or {})
    return state


def _declare(state: StageState, line: str) -> None:
    instr = parse("FROM x\n" + line + "\n").instructions[1]
    expanded = state.scope.expand(instr)
    if expanded.keyword == "ARG":
        state.declared.update(word.partition("=")[0] for word in expanded.args)


def test_build_args_in_run_history():
    state = _state(build_args={"B": "2", "HTTP_PROXY": "http://p", "UNUSED": "x"})
    assert state.env() == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    # The proxy arg is in RUN's environment but only shows in history once declared.
    assert state.build_arg_env() == (["HTTP_PROXY=http://p"], [])
    for line in ("ARG A=1", "ARG B", "ENV A=env"):
        _declare(state, line)
    assert state.build_arg_env() == (["B=2", "HTTP_PROXY=http://p"], ["B=2"])
    _declare(state, "ARG HTTP_PROXY")
    assert state.build_arg_env()[1] == ["B=2", "HTTP_PROXY=http://p"]


def test_meta_arg_redeclared_in_stage():
    state = _state(meta={"V": "meta"})
    assert state.build_arg_env() == ([], [])
    _declare(state, "ARG V")
    assert state.build_arg_env() == (["V=meta"], ["V=meta"])
