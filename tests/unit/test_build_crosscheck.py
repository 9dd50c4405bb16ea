"""Cross-check: our parser against the ``dockerfile`` package (a wrapper of docker's own parser).

Every Dockerfile under ``data/dockerfiles`` is parsed by both; keyword, exec-form flag, options,
values, lines, ``original`` and heredocs must agree instruction by instruction.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from berth.build.instructions import DockerfileError, Instruction
from berth.build.parser import parse

dockerfile = pytest.importorskip("dockerfile")

CORPUS = sorted((Path(__file__).parent / "data" / "dockerfiles").glob("*.Dockerfile"))


def ours(instr: Instruction) -> tuple:
    # The package reports an ONBUILD trigger's values in place of the ONBUILD's own.
    values = instr.trigger.args if instr.trigger else instr.args
    return (instr.keyword, instr.json, tuple(instr.raw_flags), tuple(values), instr.line, instr.end_line,
            instr.original, tuple((doc.name, doc.content, doc.fd) for doc in instr.heredocs))


def theirs(command) -> tuple:
    # The package gives [""] as the value of an instruction it does not know (an ONBUILD
    # trigger such as "ONBUILD FOO"); we keep no value.
    values = () if tuple(command.value) == ("",) else tuple(command.value)
    return ((command.cmd or "").upper(), command.json, tuple(command.flags), values,
            command.start_line, command.end_line, command.original or "",
            tuple((doc.name, doc.content, doc.file_descriptor) for doc in command.heredocs))


def test_corpus_is_varied():
    assert len(CORPUS) >= 20
    keywords = {i.keyword for path in CORPUS for i in parse(path.read_text()).instructions}
    assert keywords == {"FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "LABEL", "ARG", "COPY", "ADD", "EXPOSE",
                        "VOLUME", "USER", "WORKDIR", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_matches_docker_parser(path):
    text = path.read_bytes().decode()
    expected = [theirs(c) for c in dockerfile.parse_string(text)]
    got = [ours(i) for i in parse(text).instructions]
    assert len(got) == len(expected)
    for mine, reference in zip(got, expected, strict=True):
        assert mine == reference


FRAGMENTS = ["\nRUN ", "\nCOPY ", "\nENV ", "\nONBUILD ", "\nFROM ", "\nARG ", "\nLABEL ", "\nHEALTHCHECK ",
             "\nCMD ", "\nVOLUME ", "\nEXPOSE ", "# escape=`\n", "# syntax=x\n", " ", "\t", "\\", "\\\n", "`",
             "``", "\n", "# c\n", '"', "'", "a", "b=c", "x=", "[", "]", '["a"]', '["a", "b"]', "--from=x",
             "--chown=1", "--link", "--", "<<EOF", "<<-EOF", '<<"EOF"', "3<<EOF", "\nEOF\n", "\n\tEOF\n", "$A",
             "${B}", "AS", "name", " CMD", "NONE", "\r\n", " \"a b\"", " 'c d'", "--interval=1s"]


@pytest.mark.parametrize("seed", range(4))
def test_random_texts_match_docker_parser(seed):
    """Random fragment soups parse (without per-instruction checks) exactly as docker parses them,
    and fail with the same reason when docker's parser fails."""
    rng = random.Random(seed)
    for _ in range(1500):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 25)))
        try:
            expected: object = [theirs(c) for c in dockerfile.parse_string(text)]
        except Exception as err:  # the package raises its own GoParseError
            expected = str(err)
        try:
            got: object = [ours(i) for i in parse(text, validate=False).instructions]
        except DockerfileError as err:
            got = err.reason
        assert got == expected, repr(text)
