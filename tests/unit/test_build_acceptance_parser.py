"""Issue #4 acceptance line 3, one test per case (pure: parser, expander, .dockerignore).

"Parser and expansion cases, with the right values: escape directive only at the top; mid-line
``#``; invalid-JSON exec form run by the shell; ``ENV a=1 b=$a`` in one line vs two; ARG before
FROM with and without redeclaration; inherited CMD cleared by ENTRYPOINT; ``.dockerignore`` with
``**``, ``!`` and a leading ``/``."

The same cases end to end through berthd: ``tests/integration/test_build_acceptance.py``
(``test_parser_cases_in_a_real_build``, ``test_inherited_cmd_cleared_by_entrypoint``). More
cases of each kind live in ``test_build_parser.py``, ``test_build_shell.py`` and
``test_build_dockerignore.py``; the parser is also cross-checked against docker's own
(``test_build_crosscheck.py``).
"""

from __future__ import annotations

from pathlib import Path

from berth.build.commands import split_stages, to_command
from berth.build.dispatch_run import run_argv
from berth.build.dockerignore import Matcher, read_patterns, walk_context
from berth.build.parser import parse
from berth.build.shell import StageScope, expand_instruction, meta_arg_values


def _stage_env(text: str) -> dict[str, str]:
    """The environment after the single stage's ENV instructions, as the builder expands them."""
    df = parse(text)
    meta, stages = split_stages(df)
    scope = StageScope({}, meta_arg_values(meta, {}), {}, df.escape)
    for instr in stages[0].instructions:
        expanded = scope.expand(instr)
        if expanded.keyword == "ENV":
            scope.env.update(zip(expanded.args[::2], expanded.args[1::2], strict=True))
    return dict(scope.env)


def test_escape_directive_only_at_the_top():
    """``# escape=`` is a directive in the leading comment block only; later it is a comment."""
    top = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert top.escape == "`" and [i.args for i in top.instructions] == [["busybox"], ["echo a   b"]]
    late = parse("FROM busybox\n# escape=`\nRUN echo a `\nRUN b\n")
    assert late.escape == "\\"
    assert [i.args for i in late.instructions] == [["busybox"], ["echo a `"], ["b"]]
    after_comment = parse("# a comment first\n# escape=`\nFROM busybox\n")
    assert after_comment.escape == "\\"


def test_mid_line_hash_is_not_a_comment():
    """Only a line starting with ``#`` is a comment; a ``#`` later in the line is an argument."""
    df = parse("FROM busybox\n# a comment\nRUN echo one # two\nENV A=b#c\n")
    assert [(i.keyword, i.args) for i in df.instructions[1:]] == [("RUN", ["echo one # two"]), ("ENV", ["A", "b#c"])]


def test_invalid_json_exec_form_is_run_by_the_shell():
    """A ``[...]`` that is not a JSON array of strings is shell form: the shell runs it as is."""
    instr = parse('FROM busybox\nRUN ["echo", "unterminated]\n').instructions[1]
    assert instr.json is False
    assert run_argv(["/bin/sh", "-c"], to_command(instr)) == ["/bin/sh", "-c", '["echo", "unterminated]']
    valid = parse('FROM busybox\nRUN ["echo", "ok"]\n').instructions[1]
    assert valid.json is True and run_argv(["/bin/sh", "-c"], to_command(valid)) == ["echo", "ok"]


def test_env_in_one_line_vs_two():
    """Within one ENV every reference sees the value from before it: ``b`` is empty; on two
    lines ``b`` is 1."""
    assert _stage_env("FROM busybox\nENV a=1 b=$a\n") == {"a": "1", "b": ""}
    assert _stage_env("FROM busybox\nENV a=1\nENV b=$a\n") == {"a": "1", "b": "1"}


def test_arg_before_from_with_and_without_redeclaration():
    """An ARG before the first FROM is seen by FROM lines only, unless the stage redeclares it
    (then it has the meta value, or the --build-arg one)."""
    text = "ARG TAG=1.36\nFROM busybox:$TAG\n"
    for stage, build_args, from_value, seen in (
            ("RUN echo $TAG", {}, "busybox:1.36", {}),
            ("ARG TAG\nRUN echo $TAG", {}, "busybox:1.36", {"TAG": "1.36"}),
            ("ARG TAG\nRUN echo $TAG", {"TAG": "2"}, "busybox:2", {"TAG": "2"})):
        meta, stages = split_stages(parse(text + stage))
        values = meta_arg_values(meta, build_args)
        assert expand_instruction(stages[0].from_instruction, values).args == [from_value]
        scope = StageScope({}, values, build_args)
        for instr in stages[0].instructions:
            scope.expand(instr)
        assert scope.variables() == seen, stage


def test_dockerignore_double_star_exception_and_leading_slash(tmp_path: Path):
    """``**`` matches any number of directories, ``!`` re-includes (the last matching line
    wins), a leading ``/`` means the context root; the Dockerfile and .dockerignore are sent."""
    patterns = read_patterns("**/*.log\n!keep/**\n/build\nDockerfile\n.dockerignore\n")
    matcher = Matcher(patterns)
    cases = {"a.log": True, "x/y/z.log": True, "keep/x/a.log": False, "build": True, "build/out.o": True,
             "src/build": False, "src/main.c": False}
    assert {path: matcher.matches(path) for path in cases} == cases
    for name in ("a.log", "x/y/z.log", "keep/x/a.log", "build/out.o", "src/build", "src/main.c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / ".dockerignore").write_text("")
    sent = [p for p in walk_context(tmp_path, patterns, "Dockerfile") if not (tmp_path / p).is_dir()]
    assert sorted(sent) == [".dockerignore", "Dockerfile", "keep/x/a.log", "src/build", "src/main.c"]
