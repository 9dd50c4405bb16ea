"""Shell-word expansion: the lexer, per-instruction expansion, ARG scopes."""

from __future__ import annotations

import pytest

from berth.build.commands import split_stages
from berth.build.instructions import Heredoc
from berth.build.parser import parse
from berth.build.shell import (
    PROXY_ARGS,
    ExpansionError,
    Lexer,
    ProcessWord,
    ProcessWords,
    StageScope,
    expand_heredoc,
    expand_instruction,
    meta_arg_values,
    process_word,
    process_words,
    unused_build_args,
)
from berth.errors import InvalidParameter

ENV = {"A": "a", "EMPTY": "", "SPACED": "x  y", "PATH": "/usr/bin"}


@pytest.mark.parametrize(
    "word, expected",
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("${A}_b", "a_b"),
        ("$A_b", ""),  # the name runs on: A_b is unset
        ("$UNSET", ""),
        ("pre$A.post", "prea.post"),
        ("$", "$"),
        ("$/x", "$/x"),
        ("${UNSET:-word}", "word"),
        ("${EMPTY:-word}", "word"),
        ("${A:-word}", "a"),
        ("${UNSET-word}", "word"),
        ("${EMPTY-word}", ""),
        ("${A:+word}", "word"),
        ("${EMPTY:+word}", ""),
        ("${UNSET:+word}", ""),
        ("${EMPTY+word}", "word"),
        ("${UNSET+word}", ""),
        ("${A:?must be set}", "a"),
        ("${EMPTY?set even if empty}", ""),
        ("${UNSET:-${A}x}", "ax"),
        ("${UNSET:-'q'}", "q"),
        ("'$A \\x'", "$A \\x"),
        ('"$A \\$A \\x \\" \\\\"', 'a $A \\x " \\'),
        ("\\$A", "$A"),
        ("\\${A}", "${A}"),
        ("a\\ b", "a b"),
        ("a\\", "a"),
        ('"${SPACED}"', "x  y"),
        ("$SPACED", "x  y"),
        ("$1x", "x"),
        ("$PATH:/sbin", "/usr/bin:/sbin"),
    ],
)
def test_process_word(word, expected):
    assert process_word(word, ENV) == expected
    assert ProcessWord(word, ENV) == expected


@pytest.mark.parametrize(
    "word, expected",
    [
        ("a b  c", ["a", "b", "c"]),
        ("$SPACED z", ["x", "y", "z"]),  # unquoted values split
        ('"$SPACED" z', ["x  y", "z"]),  # quoted values do not
        ('a"b c"d', ["ab cd"]),
        ('"" x', ["x"]),  # empty words are dropped
        ("a\\ b", ["a b"]),
        ("$EMPTY", []),
        ("  80/tcp   443 ", ["80/tcp", "443"]),
    ],
)
def test_process_words(word, expected):
    assert process_words(word, ENV) == expected
    assert ProcessWords(word, ENV) == expected


@pytest.mark.parametrize(
    "word, reason",
    [
        ("${UNSET:?boom}", "UNSET: boom"),
        ("${EMPTY:?boom}", "EMPTY: boom"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${UNSET:?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${A", "syntax error: missing '}'"),
        ("${A:-x", "syntax error: missing '}'"),
        ("${", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${A%x}", "missing ':' in substitution"),
        ("${A:%x}", "unsupported modifier (%) in substitution"),
        ('"open', "unexpected end of statement while looking for matching double-quote"),
        ("'open", "unexpected end of statement while looking for matching single-quote"),
    ],
)
def test_expansion_errors(word, reason):
    with pytest.raises(ExpansionError) as err:
        process_word(word, ENV)
    assert err.value.reason == reason
    assert isinstance(err.value, InvalidParameter)


@pytest.mark.parametrize(
    "word, expected",
    [
        ("`$A", "$A"),
        ("a` b", "a b"),
        ("c:\\dir\\$A", "c:\\dir\\a"),
        ('"q`"q"', 'q"q'),
    ],
)
def test_backtick_escape(word, expected):
    assert process_word(word, ENV, escape="`") == expected


def test_lexer_rejects_other_escape_tokens():
    with pytest.raises(ValueError):
        Lexer("x")


def expand_all(text: str, env: dict[str, str] | None = None) -> list[tuple[str, list[str], dict[str, str]]]:
    """Expand each instruction of a single-stage Dockerfile the way a builder walks it."""
    df = parse(text)
    meta, stages = split_stages(df)
    scope = StageScope(env or {}, meta_arg_values(meta, {}), {}, df.escape)
    out = []
    for instr in stages[0].instructions:
        expanded = scope.expand(instr)
        out.append((expanded.keyword, expanded.args, expanded.flags))
    return out


def test_env_in_one_instruction_sees_values_from_before_it():
    assert expand_all("FROM a\nENV a=1 b=$a") == [("ENV", ["a", "1", "b", ""], {})]
    assert expand_all("FROM a\nENV a=1\nENV b=$a") == [("ENV", ["a", "1"], {}), ("ENV", ["b", "1"], {})]
    # The reference's example: def=hello, ghi=bye.
    got = expand_all("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc")
    assert got[1:] == [("ENV", ["abc", "bye", "def", "hello"], {}), ("ENV", ["ghi", "bye"], {})]


def test_arg_in_one_instruction_sees_values_from_before_it():
    assert expand_all("FROM a\nARG x=1 y=$x\nARG z=$x") == [("ARG", ["x=1", "y="], {}), ("ARG", ["z=1"], {})]


@pytest.mark.parametrize(
    "line, env, keyword, args, flags",
    [
        ('ENV "k"="v w" PATH=$PATH:/x', {"PATH": "/bin"}, "ENV", ["k", "v w", "PATH", "/bin:/x"], {}),
        ("ENV legacy $A and more", ENV, "ENV", ["legacy", "a and more"], {}),
        ('LABEL "com.x"="$A b"', ENV, "LABEL", ["com.x", "a b"], {}),
        ("WORKDIR ${A}/w", ENV, "WORKDIR", ["a/w"], {}),
        ("USER ${U:-nobody}", {}, "USER", ["nobody"], {}),
        ("STOPSIGNAL $S", {"S": "SIGINT"}, "STOPSIGNAL", ["SIGINT"], {}),
        ("VOLUME $SPACED /v", ENV, "VOLUME", ["x  y", "/v"], {}),
        ('VOLUME ["$A"]', ENV, "VOLUME", ["a"], {}),
        ("EXPOSE $PORTS 9000/udp", {"PORTS": "80 443"}, "EXPOSE", ["80", "443", "9000/udp"], {}),
        ("COPY --chown=$U:$U --from=$S $A /d/$A", {"U": "1", "S": "st", "A": "f"}, "COPY",
         ["f", "/d/f"], {"chown": "1:1", "from": "st"}),
        ('COPY ["$A b", "/x"]', ENV, "COPY", ["a b", "/x"], {}),
        ("COPY \\$A /quux", ENV, "COPY", ["$A", "/quux"], {}),
        ("ADD --chown=$A x y", ENV, "ADD", ["x", "y"], {"chown": "a"}),
        ("COPY <<EOF /$A\nhi $A\nEOF", ENV, "COPY", ["<<EOF", "/a"], {}),
        # Left to the shell (or to the downstream build for ONBUILD).
        ("RUN echo $A", ENV, "RUN", ["echo $A"], {}),
        ('CMD ["$A"]', ENV, "CMD", ["$A"], {}),
        ("ENTRYPOINT $A", ENV, "ENTRYPOINT", ["$A"], {}),
        ("HEALTHCHECK CMD $A", ENV, "HEALTHCHECK", ["CMD", "$A"], {}),
        ("ONBUILD ENV x=$A", ENV, "ONBUILD", ["ENV x=$A"], {}),
        ("SHELL [\"$A\"]", ENV, "SHELL", ["$A"], {}),
    ],
)
def test_expand_instruction(line, env, keyword, args, flags):
    instr = parse(line).instructions[0]
    expanded = expand_instruction(instr, env)
    assert (expanded.keyword, expanded.args, expanded.flags) == (keyword, args, flags)
    assert expanded.original == instr.original


def test_expand_instruction_keeps_raw_flags_in_step():
    instr = parse("COPY --from=$S --link a b").instructions[0]
    assert expand_instruction(instr, {"S": "build"}).raw_flags == ["--from=build", "--link"]


def test_expand_instruction_error_names_word_and_line():
    instr = parse("FROM a\nWORKDIR ${DIR:?need a dir}").instructions[1]
    with pytest.raises(ExpansionError) as err:
        expand_instruction(instr, {})
    assert str(err.value) == 'failed to process "${DIR:?need a dir}": DIR: need a dir'
    assert err.value.line == 2


def test_expand_with_backtick_escape():
    df = parse("# escape=`\nFROM a\nWORKDIR c:\\`$A")
    assert expand_instruction(df.instructions[1], ENV, df.escape).args == ["c:\\$A"]


@pytest.mark.parametrize(
    "heredoc, expected",
    [
        (Heredoc("EOF", 'echo "hello ${FOO}" \\$x\n'), 'echo "hello bar" \\$x\n'),
        (Heredoc("EOF", "\techo '${FOO}' $FOO\n", chomp_tabs=True), "echo '${FOO}' bar\n"),
        (Heredoc("EOF", '\techo "hello ${FOO}"\n', expand=False, chomp_tabs=True), 'echo "hello ${FOO}"\n'),
        (Heredoc("EOF", "it's $FOO\nsay \"$FOO\n"), "it's bar\nsay \"bar\n"),
    ],
)
def test_expand_heredoc(heredoc, expected):
    assert expand_heredoc(heredoc, {"FOO": "bar"}) == expected


ARG_FROM = "ARG VERSION=latest\nARG OTHER=${VERSION}-x\nFROM busybox:$VERSION\n"


@pytest.mark.parametrize(
    "stage, build_args, from_args, variables",
    [
        # Not redeclared: the meta ARG is visible to FROM only.
        ("RUN x", {}, ["busybox:latest"], {}),
        # Redeclared without a value: the stage gets the meta default...
        ("ARG VERSION", {}, ["busybox:latest"], {"VERSION": "latest"}),
        # ...or the --build-arg value, which also reaches FROM.
        ("ARG VERSION", {"VERSION": "1.36"}, ["busybox:1.36"], {"VERSION": "1.36"}),
        # A redeclaration with its own default shadows the meta value.
        ("ARG VERSION=mine", {}, ["busybox:latest"], {"VERSION": "mine"}),
        ("ARG OTHER", {"VERSION": "2"}, ["busybox:2"], {"OTHER": "2-x"}),
        # An ARG nobody gives a value stays unset; ENV wins over ARG.
        ("ARG NOVALUE", {}, ["busybox:latest"], {}),
        ("ARG VERSION\nENV VERSION=env", {}, ["busybox:latest"], {"VERSION": "env"}),
    ],
)
def test_arg_before_from(stage, build_args, from_args, variables):
    df = parse(ARG_FROM + stage)
    meta, stages = split_stages(df)
    values = meta_arg_values(meta, build_args)
    assert expand_instruction(stages[0].from_instruction, values).args == from_args
    scope = StageScope({}, values, build_args)
    for instr in stages[0].instructions:
        scope.expand(instr)
    assert scope.variables() == variables


def test_meta_values_with_unset_build_arg():
    meta, _ = split_stages(parse(ARG_FROM))
    assert meta_arg_values(meta, {"VERSION": None}) == {"VERSION": "latest", "OTHER": "latest-x"}


def test_proxy_args_need_no_declaration():
    scope = StageScope({"PATH": "/bin"}, {}, {"http_proxy": "http://proxy:3128", "FOO": "x"})
    assert scope.variables() == {"http_proxy": "http://proxy:3128", "PATH": "/bin"}
    assert {"HTTP_PROXY", "https_proxy", "NO_PROXY", "all_proxy", "FTP_PROXY"} <= PROXY_ARGS
    assert len(PROXY_ARGS) == 10


def test_stage_scope_expansion_uses_image_env():
    got = expand_all("FROM a\nWORKDIR $HOME/app\nENV HOME=/h\nWORKDIR $HOME", {"HOME": "/root"})
    assert got == [("WORKDIR", ["/root/app"], {}), ("ENV", ["HOME", "/h"], {}), ("WORKDIR", ["/h"], {})]


def test_unused_build_args():
    df = parse("ARG A\nFROM x\nARG B=1 C\n")
    given = {"A": "1", "B": "2", "D": "3", "HTTP_PROXY": "p", "E": None}
    assert unused_build_args(df.instructions, given) == ["D", "E"]
