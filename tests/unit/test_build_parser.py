"""Dockerfile parser: directives, line handling, forms, per-instruction arguments, heredocs, errors."""

from __future__ import annotations

import pytest

from berth.build.commands import (
    ArgCommand,
    CmdCommand,
    CopyCommand,
    FromCommand,
    HealthcheckCommand,
    KeyValueCommand,
    ListCommand,
    OnbuildCommand,
    RunCommand,
    ValueCommand,
    split_stages,
    to_command,
)
from berth.build.instructions import DockerfileError, Heredoc
from berth.build.parser import extract_flags, parse, split_words
from berth.errors import InvalidParameter
from berth.timeutil import parse_go_duration


def shape(text: str) -> list[tuple[str, list[str], bool]]:
    return [(i.keyword, i.args, i.json) for i in parse(text).instructions]


@pytest.mark.parametrize(
    "text, directives, instructions",
    [
        ("# escape=`\nFROM a `\n AS b", {"escape": "`"}, [("FROM", ["a", "AS", "b"], False)]),
        ("#ESCAPE = `\nFROM a `\n AS b", {"escape": "`"}, [("FROM", ["a", "AS", "b"], False)]),
        ("  # escape=`\nFROM a `\n AS b", {"escape": "`"}, [("FROM", ["a", "AS", "b"], False)]),
        ("# syntax=docker/dockerfile:1\n# escape=\\\nFROM a",
         {"syntax": "docker/dockerfile:1", "escape": "\\"}, [("FROM", ["a"], False)]),
        # Once an instruction, a comment, a blank line or an unknown directive is seen,
        # a later "# escape=" is only a comment: the backtick stays literal.
        ("FROM a\n# escape=`\nRUN echo a `\nRUN b", {},
         [("FROM", ["a"], False), ("RUN", ["echo a `"], False), ("RUN", ["b"], False)]),
        ("# About my dockerfile\n# escape=`\nFROM a\nRUN x `\nRUN y", {},
         [("FROM", ["a"], False), ("RUN", ["x `"], False), ("RUN", ["y"], False)]),
        ("\n# escape=`\nFROM a\nRUN x `\nRUN y", {},
         [("FROM", ["a"], False), ("RUN", ["x `"], False), ("RUN", ["y"], False)]),
        ("# unknown=value\n# escape=`\nFROM a\nRUN x `\nRUN y", {},
         [("FROM", ["a"], False), ("RUN", ["x `"], False), ("RUN", ["y"], False)]),
        ("# escape=\nFROM a", {}, [("FROM", ["a"], False)]),
    ],
)
def test_directives_only_at_the_top(text, directives, instructions):
    df = parse(text)
    assert df.directives == directives
    assert shape(text) == instructions


@pytest.mark.parametrize(
    "text, message",
    [
        ("# escape=`\n# escape=\\\nFROM a", "Dockerfile parse error line 2: only one escape parser directive can be used"),
        ("# syntax=a\n#SYNTAX=b\nFROM a", "Dockerfile parse error line 2: only one syntax parser directive can be used"),
        ("# escape=x\nFROM a", "Dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\"),
    ],
)
def test_directive_errors(text, message):
    with pytest.raises(DockerfileError) as err:
        parse(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text, expected",
    [
        # "#" in the middle of a line is an argument, not a comment.
        ("RUN echo 'we are running some # of cool things'",
         [("RUN", ["echo 'we are running some # of cool things'"], "RUN echo 'we are running some # of cool things'", 1, 1)]),
        # Comment and blank lines inside a continuation are dropped; the continuation
        # lines keep their leading whitespace.
        ("RUN echo hello \\\n# comment\n\n  world", [("RUN", ["echo hello   world"], "RUN echo hello   world", 1, 4)]),
        ("RUN a \\   \n  b \\\n\t\n    # c \\\n  c", [("RUN", ["a   b   c"], "RUN a   b   c", 1, 5)]),
        # Leading whitespace before comments and instructions is ignored; trailing kept in original.
        ("   # indented comment\n\tRUN   x  ", [("RUN", ["x"], "RUN   x  ", 2, 2)]),
        # A doubled escape at the end of a line is literal, not a continuation.
        ("RUN a\\\\\nRUN b", [("RUN", ["a\\\\"], "RUN a\\\\", 1, 1), ("RUN", ["b"], "RUN b", 2, 2)]),
        # A continuation at the end of the file just ends the instruction.
        ("RUN a \\", [("RUN", ["a"], "RUN a ", 1, 1)]),
        ("FROM a\r\nRUN a \\\r\n b\r\n", [("FROM", ["a"], "FROM a", 1, 1), ("RUN", ["a  b"], "RUN a  b", 2, 3)]),
        ("\ufeffFROM a", [("FROM", ["a"], "FROM a", 1, 1)]),
        ("# escape=`\nRUN dir c:\\\nRUN b", [("RUN", ["dir c:\\"], "RUN dir c:\\", 2, 2), ("RUN", ["b"], "RUN b", 3, 3)]),
    ],
)
def test_lines_comments_continuations(text, expected):
    got = [(i.keyword, i.args, i.original, i.line, i.end_line) for i in parse(text).instructions]
    assert got == expected


@pytest.mark.parametrize(
    "line, args, is_json",
    [
        ('RUN ["/bin/sh", "-c", "echo hi"]', ["/bin/sh", "-c", "echo hi"], True),
        ('RUN [ "a" , "b" ]  ', ["a", "b"], True),
        ("RUN echo  hi  ", ["echo  hi"], False),
        ('CMD [ "a",]', ['[ "a",]'], False),  # invalid JSON falls back to shell form
        ("CMD ['single']", ["['single']"], False),
        ('ENTRYPOINT ["c:\\windows\\tasklist.exe"]', ['["c:\\windows\\tasklist.exe"]'], False),
        ('CMD ["a"] trailing', ["a"], True),
        ("CMD [NaN]", ["[NaN]"], False),
        ("CMD []", [], True),
        ('CMD {"a": 1}', ['{"a": 1}'], False),
        ('CMD ["\\u00e9", "tab\\t"]', ["é", "tab\t"], True),
        ('COPY ["a b.txt", "/dest dir/"]', ["a b.txt", "/dest dir/"], True),
        ("COPY a  b   /c/", ["a", "b", "/c/"], False),
        ('ADD ["x", "/y"', ['["x",', '"/y"'], False),
        ('VOLUME ["/data", "/logs"]', ["/data", "/logs"], True),
        ('VOLUME /a "/b c"', ["/a", '"/b', 'c"'], False),
        ('SHELL ["/bin/bash", "-c"]', ["/bin/bash", "-c"], True),
        ('HEALTHCHECK --interval=5s CMD ["curl", "-f", "x"]', ["CMD", "curl", "-f", "x"], True),
        ("HEALTHCHECK CMD curl -f x || exit 1", ["CMD", "curl -f x || exit 1"], False),
        ("HEALTHCHECK NONE", ["NONE"], False),
        ("EXPOSE 80/tcp   443", ["80/tcp", "443"], False),
        ("FROM  alpine   as   build  ", ["alpine", "as", "build"], False),
        ("WORKDIR  /path with spaces  ", ["/path with spaces"], False),
        ("MAINTAINER  Jane  Doe ", ["Jane  Doe"], False),
        ("user root", ["root"], False),
    ],
)
def test_forms_and_arguments(line, args, is_json):
    (instr,) = parse(line).instructions
    assert (instr.args, instr.json) == (args, is_json)


def test_non_string_json_array_is_an_error():
    with pytest.raises(DockerfileError) as err:
        parse('FROM a\nCMD ["a", 1]')
    assert str(err.value) == (
        "Dockerfile parse error line 2: when using JSON array syntax, arrays must be comprised of strings only")


@pytest.mark.parametrize(
    "line, args",
    [
        ('ENV a=1 b="x y"', ["a", "1", "b", '"x y"']),
        ("ENV a=b\\ c  d='e f' g=", ["a", "b\\ c", "d", "'e f'", "g", ""]),
        ("ENV legacy value with  spaces", ["legacy", "value with  spaces"]),
        ('LABEL "com.example"="ACME Inc" v=1', ['"com.example"', '"ACME Inc"', "v", "1"]),
        ("LABEL legacy form", ["legacy", "form"]),
        ("ARG a=1 b c=", ["a=1", "b", "c="]),
        ('ARG q="x y"', ['q="x y"']),
    ],
)
def test_key_value_instructions(line, args):
    (instr,) = parse(line).instructions
    assert instr.args == args


@pytest.mark.parametrize(
    "line, message",
    [
        ("ENV x=1 y", "Syntax error - can't find = in \"y\". Must be of the form: name=value"),
        ("ENV k", "ENV must have two arguments"),
        ("LABEL k", "LABEL must have two arguments"),
    ],
)
def test_key_value_errors(line, message):
    with pytest.raises(DockerfileError) as err:
        parse(line)
    assert (err.value.reason, err.value.line) == (message, 1)


@pytest.mark.parametrize(
    "rest, flags, remainder",
    [
        ("--from=build --chown=1:1 a b", ["--from=build", "--chown=1:1"], "a b"),
        ('--chown="a b" --link  x y', ["--chown=a b", "--link"], "x y"),
        ("--chown=a\\ b --from='x y' a", ["--chown=a b", "--from=x y"], "a"),
        ("--from=a -- --x y", ["--from=a"], "--x y"),
        ('--a=1 "--b=2" x', ["--a=1"], '"--b=2" x'),
        ("-x y", [], "-x y"),
        ("", [], ""),
    ],
)
def test_extract_flags(rest, flags, remainder):
    assert extract_flags(rest) == (flags, remainder)


def test_flags_dict_and_raw_flags():
    (instr,) = parse("RUN --mount=type=cache,target=/c --mount=type=bind --network=none echo").instructions
    assert instr.raw_flags == ["--mount=type=cache,target=/c", "--mount=type=bind", "--network=none"]
    assert instr.flags == {"mount": "type=bind", "network": "none"}
    cmd = to_command(instr)
    assert isinstance(cmd, RunCommand)
    assert cmd.mounts == ["type=cache,target=/c", "type=bind"]
    assert cmd.network == "none"


@pytest.mark.parametrize(
    "text, word, escape, words",
    [
        ("plain", 'a "b c" d', "\\", ["a", '"b c"', "d"]),
        ("escaped space", "a\\ b c", "\\", ["a\\ b", "c"]),
        ("escaped quote opens nothing", 'a\\"b c', "\\", ['a\\"b', "c"]),
        ("escape literal in single quotes", "'a\\' b", "\\", ["'a\\'", "b"]),
        ("backtick escape", 'a`"b c', "`", ['a`"b', "c"]),
        ("trailing escape dropped", "a\\", "\\", ["a"]),
    ],
)
def test_split_words(text, word, escape, words):
    assert split_words(word, escape) == words


HEREDOC_CASES = [
    ("RUN <<EOF\nhello\nEOF", ["<<EOF"], [Heredoc("EOF", "hello\n")], "RUN <<EOF\nhello\nEOF\n", 3),
    ("RUN <<-EOF cat\n\tx\n\t\ty\n\tEOF\n", ["<<-EOF cat"], [Heredoc("EOF", "\tx\n\t\ty\n", True, True)],
     "RUN <<-EOF cat\n\tx\n\t\ty\nEOF\n", 4),
    ('RUN <<"A" <<\'B\' cat\nx $y\nA\ny\nB', ['<<"A" <<\'B\' cat'],
     [Heredoc("A", "x $y\n", False), Heredoc("B", "y\n", False)], "RUN <<\"A\" <<'B' cat\nx $y\nA\ny\nB\n", 5),
    ("COPY <<EOF /dest\ncontent\nEOF", ["<<EOF", "/dest"], [Heredoc("EOF", "content\n")],
     "COPY <<EOF /dest\ncontent\nEOF\n", 3),
    ("RUN 3<<IN cat <&3\nx\nIN", ["3<<IN cat <&3"], [Heredoc("IN", "x\n", fd=3)], "RUN 3<<IN cat <&3\nx\nIN\n", 3),
    ("RUN cat <<EOF | \\\n  grep x\nx\n# kept\n\nEOF", ["cat <<EOF |   grep x"],
     [Heredoc("EOF", "x\n# kept\n\n")], "RUN cat <<EOF |   grep x\nx\n# kept\n\nEOF\n", 6),
    ("RUN <<EOF\n  EOF\nEOF", ["<<EOF"], [Heredoc("EOF", "  EOF\n")], "RUN <<EOF\n  EOF\nEOF\n", 3),
    # Not heredocs: "<< EOF", a prefix glued to "<<", quoted or escaped "<<", exec form, CMD.
    ("RUN cat << EOF", ["cat << EOF"], [], "RUN cat << EOF", 1),
    ("RUN cat<<EOF", ["cat<<EOF"], [], "RUN cat<<EOF", 1),
    ('RUN echo "<<EOF"', ['echo "<<EOF"'], [], 'RUN echo "<<EOF"', 1),
    ("RUN \\<<EOF", ["\\<<EOF"], [], "RUN \\<<EOF", 1),
    ('RUN ["<<EOF"]', ["<<EOF"], [], 'RUN ["<<EOF"]', 1),
    ("CMD <<EOF", ["<<EOF"], [], "CMD <<EOF", 1),
]


@pytest.mark.parametrize("text, args, heredocs, original, end_line", HEREDOC_CASES)
def test_heredocs(text, args, heredocs, original, end_line):
    (instr,) = parse(text).instructions
    assert (instr.args, instr.heredocs, instr.original, instr.end_line) == (args, heredocs, original, end_line)


def test_heredoc_body_chomps_tabs_only_for_dash_form():
    assert Heredoc("E", "\ta\n\t\tb\n  c\n", chomp_tabs=True).body() == "a\nb\n  c\n"
    assert Heredoc("E", "\ta\n").body() == "\ta\n"


def test_copy_heredoc_sources_in_typed_command():
    cmd = to_command(parse('COPY <<A <<-"B" plain /dest\na\nA\n\tb\nB').instructions[0])
    assert isinstance(cmd, CopyCommand)
    assert cmd.sources == ["plain"]
    assert cmd.heredoc_sources == [Heredoc("A", "a\n"), Heredoc("B", "\tb\n", False, True)]
    assert cmd.dest == "/dest"


def test_onbuild_trigger_is_parsed():
    df = parse("ONBUILD copy --from=build /a /b\nONBUILD RUN <<EOF\nx\nEOF\nONBUILD CMD [\"a\"]")
    copy, run, cmd = df.instructions
    assert copy.trigger is not None and copy.trigger.keyword == "COPY"
    assert copy.trigger.flags == {"from": "build"}
    assert copy.args == ["copy --from=build /a /b"]
    assert run.trigger is not None and run.trigger.heredocs == [Heredoc("EOF", "x\n")]
    assert (run.args, run.original, run.end_line) == (["RUN <<EOF\nx\nEOF"], "ONBUILD RUN <<EOF", 4)
    assert cmd.json and cmd.trigger is not None and cmd.trigger.args == ["a"]
    assert to_command(copy) == OnbuildCommand("copy --from=build /a /b", copy.trigger)


ERROR_CASES = [
    ("", "the Dockerfile (Dockerfile) cannot be empty"),
    ("# only a comment\n\n   \n", "file with no instructions"),
    ("FROM a\nRUN x\nFOO bar", "Dockerfile parse error line 3: unknown instruction: FOO"),
    ("FROM a\n\nRUN <<EOF\nbody", "Dockerfile parse error line 3: unterminated heredoc"),
    ("FROM a b", "Dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a AS b c", "Dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a AS 1st", 'Dockerfile parse error line 1: invalid name for build stage: "1st", '
                      "name can't start with a number or contain symbols"),
    ("FROM a\nENV", "Dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nCOPY a", "Dockerfile parse error line 2: COPY requires at least two arguments, "
                       "but only one was provided. Destination could not be determined."),
    ("FROM a\nCOPY a <<EOF\nx\nEOF", "Dockerfile parse error line 2: COPY cannot accept a heredoc as a destination"),
    ("FROM a\nSHELL sh -c", "Dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nUSER", "Dockerfile parse error line 2: USER requires exactly one argument"),
    ("FROM a\nEXPOSE", "Dockerfile parse error line 2: EXPOSE requires at least one argument"),
    ('FROM a\nVOLUME [""]', "Dockerfile parse error line 2: VOLUME specified can not be an empty string"),
    ("FROM a\nCOPY --foo=1 a b", "Dockerfile parse error line 2: Unknown flag: foo"),
    ("FROM a\nENV --x=1 a=b", "Dockerfile parse error line 2: Unknown flag: x"),
    ("FROM a\nCOPY --from=a --from=b a b", "Dockerfile parse error line 2: Duplicate flag specified: from"),
    ("FROM a\nCOPY --chown a b", "Dockerfile parse error line 2: Missing a value on flag: chown"),
    ("FROM a\nCOPY --link= a b", "Dockerfile parse error line 2: Missing a value on flag: link"),
    ("FROM a\nCOPY --link=maybe a b", "Dockerfile parse error line 2: Expecting boolean value for flag link, not: maybe"),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x",
     'Dockerfile parse error line 2: Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --timeout=5 CMD x", 'Dockerfile parse error line 2: time: missing unit in duration "5"'),
    ("FROM a\nHEALTHCHECK --retries=0 CMD x", "Dockerfile parse error line 2: --retries must be at least 1 (not 0)"),
    ("FROM a\nHEALTHCHECK FOO x", 'Dockerfile parse error line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK CMD", "Dockerfile parse error line 2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK NONE x", "Dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nONBUILD ONBUILD RUN x", "Dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD from x", "Dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD", "Dockerfile parse error line 2: ONBUILD requires at least one argument"),
    ("FROM a\nARG =x", "Dockerfile parse error line 2: ARG names can not be blank"),
    ("FROM a\nENV =x", "Dockerfile parse error line 2: ENV names can not be blank"),
]


@pytest.mark.parametrize("text, message", ERROR_CASES)
def test_errors_carry_docker_wording_and_line(text, message):
    with pytest.raises(DockerfileError) as err:
        parse(text)
    assert str(err.value) == message
    assert isinstance(err.value, InvalidParameter) and err.value.status == 400


def test_empty_message_names_the_file():
    with pytest.raises(DockerfileError, match=r"^the Dockerfile \(build/Dockerfile.dev\) cannot be empty$"):
        parse("", name="build/Dockerfile.dev")


TYPED_CASES = [
    ("FROM --platform=linux/arm64 golang:1.21 AS Build", FromCommand("golang:1.21", "build", "linux/arm64")),
    ("FROM scratch", FromCommand("scratch", None, None)),
    ("RUN echo hi", RunCommand(["echo hi"], True, [], [], None, None)),
    ('RUN ["echo", "hi"]', RunCommand(["echo", "hi"], False, [], [], None, None)),
    ("CMD echo  hi", CmdCommand("CMD", ["echo  hi"], True)),
    ("ENTRYPOINT []", CmdCommand("ENTRYPOINT", [], False)),
    ('ENV a=1 b="2 3"', KeyValueCommand("ENV", [("a", "1"), ("b", '"2 3"')])),
    ("LABEL k v", KeyValueCommand("LABEL", [("k", "v")])),
    ("ARG a=1 b", ArgCommand([("a", "1"), ("b", None)])),
    ("COPY --from=b --chown=1:1 --chmod=644 --link a b /d/",
     CopyCommand(False, ["a", "b"], [], "/d/", "b", "1:1", "644", True)),
    ("ADD --checksum=sha256:ab --keep-git-dir=true https://x/y.git /src",
     CopyCommand(True, ["https://x/y.git"], [], "/src", None, None, None, False, "sha256:ab", True)),
    ("HEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms --retries=5 CMD curl x",
     HealthcheckCommand(["CMD-SHELL", "curl x"], 90 * 10**9, 3 * 10**9, 500 * 10**6, 0, 5)),
    ('HEALTHCHECK CMD ["curl", "x"]', HealthcheckCommand(["CMD", "curl", "x"])),
    ("HEALTHCHECK none", HealthcheckCommand(["NONE"])),
    ("USER 1000:1000", ValueCommand("USER", "1000:1000")),
    ("WORKDIR /a b", ValueCommand("WORKDIR", "/a b")),
    ("STOPSIGNAL SIGKILL", ValueCommand("STOPSIGNAL", "SIGKILL")),
    ("MAINTAINER Jane <j@x>", ValueCommand("MAINTAINER", "Jane <j@x>")),
    ("EXPOSE 80 53/udp", ListCommand("EXPOSE", ["80", "53/udp"])),
    ("VOLUME /a /b", ListCommand("VOLUME", ["/a", "/b"])),
    ('SHELL ["pwsh", "-c"]', ListCommand("SHELL", ["pwsh", "-c"])),
]


@pytest.mark.parametrize("line, command", TYPED_CASES)
def test_typed_commands(line, command):
    assert to_command(parse(line).instructions[0]) == command


def test_keywords_are_case_insensitive():
    text = "from alpine as base\nrun echo\nCoPy a b\nonbuild run x"
    assert [i.keyword for i in parse(text).instructions] == ["FROM", "RUN", "COPY", "ONBUILD"]


def test_split_stages():
    df = parse("ARG V=1\nARG B\nFROM a:$V AS First\nRUN x\nFROM --platform=$P first\nCOPY --from=first /a /b\nFROM c")
    meta, stages = split_stages(df)
    assert [i.args for i in meta] == [["V=1"], ["B"]]
    assert [(s.name, s.index, s.base, s.platform) for s in stages] == [
        ("first", 0, "a:$V", None), (None, 1, "first", "$P"), (None, 2, "c", None)]
    assert [[i.keyword for i in s.instructions] for s in stages] == [["RUN"], ["COPY"], []]
    assert stages[1].from_instruction.line == 5


def test_instruction_before_from_is_an_error():
    with pytest.raises(DockerfileError, match="^Dockerfile parse error line 2: no build stage in current context$"):
        split_stages(parse("ARG A\nRUN x\nFROM a"))


@pytest.mark.parametrize(
    "text, nanoseconds",
    [("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 300 * 10**6),
     ("2us", 2000), ("2µs", 2000), ("10ns", 10), (".5s", 5 * 10**8), ("-1s", -(10**9)), ("+2m", 120 * 10**9)],
)
def test_go_durations(text, nanoseconds):
    assert parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(
    "text, message",
    [("", 'time: invalid duration ""'), ("5", 'time: missing unit in duration "5"'),
     ("5x", 'time: unknown unit "x" in duration "5x"'), ("s", 'time: invalid duration "s"')],
)
def test_go_duration_errors(text, message):
    with pytest.raises(ValueError) as err:
        parse_go_duration(text)
    assert str(err.value) == message
