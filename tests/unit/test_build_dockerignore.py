""".dockerignore: pattern reading, matching, context walk, ignore-file selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.build.dockerignore import Matcher, Pattern, clean, read_patterns, select_ignore_file, walk_context
from berth.errors import InvalidParameter


@pytest.mark.parametrize(
    "path, cleaned",
    [("", "."), (".", "."), ("a/./b/", "a/b"), ("a//b", "a/b"), ("a/../b", "b"), ("../a", "../a"),
     ("/../a", "/a"), ("//a", "/a"), ("/", "/"), ("a/b/../../..", "..")],
)
def test_clean_is_go_filepath_clean(path, cleaned):
    assert clean(path) == cleaned


def test_read_patterns():
    text = "\ufeff# comment\n  *.md  \n!README.md\n/build/\n./a/../b//c\n\n!  spaced \n #not-a-comment\n/\n"
    got = [(p.text, p.exception) for p in read_patterns(text)]
    assert got == [("*.md", False), ("README.md", True), ("build", False), ("b/c", False), ("spaced", True),
                   ("#not-a-comment", False), ("/", False)]


@pytest.mark.parametrize(
    "line, message",
    [("!", 'illegal exclusion pattern: "!"'), ("[a", "syntax error in pattern"), ("a\\", "syntax error in pattern"),
     ("[]a]", "syntax error in pattern"), ("[z-a]", "syntax error in pattern"), ("[a-]", "syntax error in pattern")],
)
def test_bad_patterns(line, message):
    with pytest.raises(InvalidParameter) as err:
        read_patterns(line)
    assert str(err.value) == message


MATCH_CASES = [
    # (patterns, path, excluded)
    ("*.md", "README.md", True),
    ("*.md", "docs/a.md", False),  # "*" does not cross "/"
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("temp?", "tempa", True),
    ("temp?", "temp", False),
    ("temp?", "temp/", False),
    ("**/*.go", "main.go", True),
    ("**/*.go", "a/b/c/main.go", True),
    ("**/*.go", "a/b/c/main.py", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "ab", False),
    ("a/**", "a/x/y", True),
    ("**", "anything/at/all", True),
    ("**.go", ".go", True),  # "**" not before "/" still means "any directories"
    ("**.go", "x/.go", True),
    ("**.go", "main.go", False),
    # Leading and trailing "/" do not matter; a pattern matches a directory's contents.
    ("/build/", "build", True),
    ("/build/", "build/out/x.o", True),
    ("build", "src/build", False),
    ("node_modules", "node_modules/pkg/index.js", True),
    ("foo/bar", "foo/bar/baz", True),
    ("foo/bar", "foo/barbaz", False),
    # Character classes and escapes (Go filepath.Match syntax).
    ("file[0-9].txt", "file7.txt", True),
    ("file[0-9].txt", "filex.txt", False),
    ("file[^0-9].txt", "filex.txt", True),
    ("file[^0-9].txt", "file7.txt", False),
    ("arr[[]0].txt", "arr[0].txt", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    ("a.b", "aXb", False),
    ("(x)+", "(x)+", True),
    # "!" exceptions: the last matching line wins.
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
    ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
    ("*\n!src\n", "src/main.c", False),
    ("*\n!src\n", "docs/index.md", True),
    ("foo\n!foo/keep", "foo/keep", False),
    ("foo\n!foo/keep", "foo/keep/deeper", False),
    ("foo\n!foo/keep", "foo/other", True),
    ("foo\n!foo/keep\nfoo/keep/secret", "foo/keep/secret", True),
    ("**/*.log\n!important/**", "important/x/a.log", False),
    ("", "anything", False),
]


@pytest.mark.parametrize("patterns, path, excluded", MATCH_CASES)
def test_matches(patterns, path, excluded):
    assert Matcher(read_patterns(patterns)).matches(path) is excluded


@pytest.mark.parametrize(
    "patterns, directory, walk",
    [
        ("foo", "foo", False),
        ("foo\n!foo/keep", "foo", True),
        ("foo\n!bar/keep", "foo", False),
        ("foo\n!*/keep", "foo", True),
        ("foo\n!foo", "foo", False),  # a pattern no deeper than the directory judges it as a whole
        ("a\n!a/b/c", "a/b", True),
        ("a\n!a/x/c", "a/b", False),
        ("a\n!**/c", "a/b", True),
    ],
)
def test_may_include_under(patterns, directory, walk):
    assert Matcher(read_patterns(patterns)).may_include_under(directory) is walk


def make_tree(root: Path, paths: list[str]) -> None:
    for rel in paths:
        target = root / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rel)


TREE = ["Dockerfile", ".dockerignore", "README.md", "CHANGES.md", "main.go", "src/app.go", "src/app_test.go",
        "src/vendor/lib.go", "build/out.o", "build/keep/me.txt", "build/keep/not.tmp", "docs/guide.md",
        "empty/", "node_modules/a/index.js"]


@pytest.mark.parametrize(
    "patterns, expected",
    [
        ("**/*.go\n!src/app.go\n/build/\n!build/keep\nbuild/keep/*.tmp\nnode_modules\n*.md\n!README.md",
         [".dockerignore", "Dockerfile", "README.md", "build/keep", "build/keep/me.txt", "docs", "docs/guide.md",
          "empty", "src", "src/app.go", "src/vendor"]),
        # The Dockerfile and .dockerignore are sent even when excluded.
        ("*", [".dockerignore", "Dockerfile"]),
        ("*\n!src", [".dockerignore", "Dockerfile", "src", "src/app.go", "src/app_test.go", "src/vendor",
                     "src/vendor/lib.go"]),
        # A wildcard exception inside an excluded directory is still found (the excluded
        # directory itself is not listed).
        ("build\n!*/keep/me.txt", [".dockerignore", "CHANGES.md", "Dockerfile", "README.md", "build/keep/me.txt",
                                   "docs", "docs/guide.md", "empty", "main.go", "node_modules", "node_modules/a",
                                   "node_modules/a/index.js", "src", "src/app.go", "src/app_test.go", "src/vendor",
                                   "src/vendor/lib.go"]),
    ],
)
def test_walk_context(tmp_path, patterns, expected):
    make_tree(tmp_path, TREE)
    assert list(walk_context(tmp_path, read_patterns(patterns))) == expected


def test_walk_without_patterns_sends_everything(tmp_path):
    make_tree(tmp_path, TREE)
    everything = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert sorted(walk_context(tmp_path, [])) == everything


def test_walk_order_is_lexical_and_dirs_first(tmp_path):
    make_tree(tmp_path, ["b/z", "b/a", "a", "c/"])
    assert list(walk_context(tmp_path, [])) == ["a", "b", "b/a", "b/z", "c"]


def test_walk_lists_symlinks_without_following(tmp_path):
    make_tree(tmp_path, ["real/file"])
    os.symlink("real", tmp_path / "link")
    os.symlink("/nonexistent", tmp_path / "dangling")
    assert list(walk_context(tmp_path, [])) == ["dangling", "link", "real", "real/file"]


def test_walk_keeps_a_dockerfile_in_an_excluded_directory(tmp_path):
    make_tree(tmp_path, ["docker/Dockerfile.dev", "docker/other", "app.py"])
    got = list(walk_context(tmp_path, read_patterns("docker\n"), "docker/Dockerfile.dev"))
    assert got == ["app.py", "docker/Dockerfile.dev"]
    # A Dockerfile outside the context is simply not part of it.
    got = list(walk_context(tmp_path / "docker", read_patterns("*"), tmp_path / "elsewhere/Dockerfile"))
    assert got == []


def test_walk_keeps_a_dockerfile_with_glob_characters(tmp_path):
    make_tree(tmp_path, ["Dockerfile[1]", "Dockerfile1"])
    got = list(walk_context(tmp_path, read_patterns("*"), "Dockerfile[1]"))
    assert got == ["Dockerfile[1]"]


@pytest.mark.parametrize(
    "files, dockerfile, chosen",
    [
        ([".dockerignore", "Dockerfile"], "Dockerfile", ".dockerignore"),
        ([".dockerignore", "Dockerfile", "Dockerfile.dockerignore"], "Dockerfile", "Dockerfile.dockerignore"),
        ([".dockerignore", "build/app.Dockerfile", "build/app.Dockerfile.dockerignore"], "build/app.Dockerfile",
         "build/app.Dockerfile.dockerignore"),
        ([".dockerignore", "build/app.Dockerfile", "app.Dockerfile.dockerignore"], "build/app.Dockerfile",
         ".dockerignore"),
        (["Dockerfile"], "Dockerfile", None),
    ],
)
def test_select_ignore_file(tmp_path, files, dockerfile, chosen):
    make_tree(tmp_path, files)
    got = select_ignore_file(tmp_path, dockerfile)
    assert got == (tmp_path / chosen if chosen else None)


def test_select_ignore_file_with_absolute_dockerfile(tmp_path):
    make_tree(tmp_path, ["ctx/.dockerignore", "elsewhere/Dockerfile", "elsewhere/Dockerfile.dockerignore"])
    assert select_ignore_file(tmp_path / "ctx", tmp_path / "elsewhere/Dockerfile") == (
        tmp_path / "elsewhere/Dockerfile.dockerignore")


def test_pattern_parts():
    assert Pattern.compile("/a/b/*.c").parts == ["a", "b", "*.c"]


CROSS_PATTERNS = [
    "*.md\n!README.md",
    "build\n!build/keep",
    "**/*.go\n!src/app.go",
    "src/vendor\nnode_modules\ndocs/*.md",
    "*\n!src",
    "*/keep\n*.o",
]


@pytest.mark.parametrize("patterns", CROSS_PATTERNS)
def test_walk_agrees_with_docker_py(tmp_path, patterns):
    """docker-py's exclude_paths (a port of the docker CLI's older matcher) on cases where both agree."""
    build = pytest.importorskip("docker.utils.build")
    make_tree(tmp_path, TREE)
    lines = [line for line in patterns.splitlines() if line]
    theirs = build.exclude_paths(str(tmp_path), list(lines), "Dockerfile")
    ours = set(walk_context(tmp_path, read_patterns(patterns)))
    assert ours == set(theirs)
