""".dockerignore patterns and the walk of a build context.

Rules from docker's build-context documentation (https://docs.docker.com/build/concepts/context/,
".dockerignore files"): one pattern per line; a line starting with ``#`` in column 1 is a
comment; each pattern is trimmed and cleaned like Go's ``filepath.Clean`` and a leading ``/``
is dropped; matching uses Go's ``filepath.Match`` syntax (``*``, ``?``, ``[...]``, ``\\``
escapes) plus ``**`` for any number of directories; ``!`` lines make exceptions; the last
line matching a path (or one of its parent directories) decides. The Dockerfile and
``.dockerignore`` are sent even when a pattern excludes them.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from berth.errors import InvalidParameter

_BAD_PATTERN = "syntax error in pattern"


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern. ``exception`` is true for a ``!`` line (it re-includes what it matches)."""

    text: str
    exception: bool
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, line: str) -> Pattern:
        """Compile one pattern line (``!`` prefix allowed). Raises InvalidParameter on bad syntax."""
        text = line.strip()
        exception = text.startswith("!")
        if exception:
            text = text[1:].strip()
            if not text:
                raise InvalidParameter('illegal exclusion pattern: "!"')
        text = clean(text)
        if len(text) > 1 and text.startswith("/"):
            text = text[1:]
        return cls(text, exception, re.compile(_translate(text) + r"\Z", re.DOTALL))

    @property
    def parts(self) -> list[str]:
        """The pattern's path components."""
        return self.text.split("/")


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for ``/`` paths: "" -> ".", no ``.``/``..``/double or trailing slashes."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    # normpath keeps a leading "//" (POSIX allows it); Go does not.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_patterns(text: str) -> list[Pattern]:
    """Parse a .dockerignore file's text. Raises InvalidParameter for a bad pattern."""
    patterns = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        patterns.append(Pattern.compile(line))
    return patterns


def _translate(pattern: str) -> str:
    """A regex source for a pattern: ``*`` and ``?`` stop at ``/``; ``**`` spans directories
    (``**/`` may match no directory at all, as in docker's pattern matcher)."""
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        ch = pattern[pos]
        pos += 1
        if ch == "*" and pattern.startswith("*", pos):
            pos += 1
            pos += pattern.startswith("/", pos)
            out.append(".*" if pos == len(pattern) else "(?:.*/)?")
        elif ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if pos == len(pattern):
                raise InvalidParameter(_BAD_PATTERN)
            out.append(re.escape(pattern[pos]))
            pos += 1
        elif ch == "[":
            cls, pos = _char_class(pattern, pos)
            out.append(cls)
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _char_class(pattern: str, pos: int) -> tuple[str, int]:
    """Translate a ``[...]`` class starting after the ``[``; Go syntax: ``^`` negates, ranges ``a-z``."""
    out = ["["]
    if pattern.startswith("^", pos):
        out.append("^")
        pos += 1
    count = 0
    while True:
        if pos >= len(pattern):
            raise InvalidParameter(_BAD_PATTERN)
        if pattern[pos] == "]" and count:
            return "".join(out) + "]", pos + 1
        low, pos = _class_char(pattern, pos)
        out.append(re.escape(low))
        if pattern.startswith("-", pos):
            high, pos = _class_char(pattern, pos + 1)
            if high < low:
                raise InvalidParameter(_BAD_PATTERN)
            out.append("-" + re.escape(high))
        count += 1


def _class_char(pattern: str, pos: int) -> tuple[str, int]:
    if pos >= len(pattern) or pattern[pos] in "-]":
        raise InvalidParameter(_BAD_PATTERN)
    if pattern[pos] == "\\":
        pos += 1
        if pos >= len(pattern):
            raise InvalidParameter(_BAD_PATTERN)
    return pattern[pos], pos + 1


class Matcher:
    """Decides which context paths a list of patterns excludes."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns = list(patterns)
        self._parts = [_component_regexes(p) for p in self.patterns]

    def matches(self, path: str) -> bool:
        """True when ``path`` (relative, ``/``-separated) is excluded from the context.

        A pattern matches a path when it matches the path itself or any parent directory;
        the last matching pattern wins, an exception (``!``) re-including the path.
        """
        path = clean(path)
        parents = path.split("/")
        candidates = ["/".join(parents[:i]) for i in range(1, len(parents))] + [path]
        excluded = False
        for pattern in self.patterns:
            if pattern.exception != excluded:
                continue  # only a pattern that would flip the verdict needs testing
            if any(pattern.regex.match(candidate) for candidate in candidates):
                excluded = not pattern.exception
        return excluded

    def may_include_under(self, directory: str) -> bool:
        """Whether some path below an excluded ``directory`` could be re-included.

        Only an exception pattern with more components than the directory (or a ``**``)
        whose leading components match the directory's can match a deeper path on its own;
        every other pattern judges a descendant exactly as it judges the directory.
        """
        dirs = clean(directory).split("/")
        for pattern, parts in zip(self.patterns, self._parts, strict=True):
            if not pattern.exception:
                continue
            if parts is None:
                return True
            if len(parts) > len(dirs) and all(part.match(name) for part, name in zip(parts, dirs, strict=False)):
                return True
        return False


def _component_regexes(pattern: Pattern) -> list[re.Pattern[str]] | None:
    """One regex per component of the pattern, or None when it has ``**`` (spans components)."""
    if "**" in pattern.text:
        return None
    return [re.compile(_translate(part) + r"\Z", re.DOTALL) for part in pattern.parts]


def _literal(path: str) -> str:
    """A pattern matching exactly ``path``."""
    return re.sub(r"([*?\[\\])", r"\\\1", path)


def select_ignore_file(context: Path, dockerfile: str | Path = "Dockerfile") -> Path | None:
    """The ignore file for a build: ``<Dockerfile>.dockerignore`` next to the Dockerfile when it
    exists (it takes precedence), else ``<context>/.dockerignore``, else None.

    A relative ``dockerfile`` is taken relative to ``context``.
    """
    specific = Path(context, dockerfile).with_name(Path(dockerfile).name + ".dockerignore")
    if specific.is_file():
        return specific
    default = Path(context, ".dockerignore")
    return default if default.is_file() else None


def walk_context(root: Path, patterns: Iterable[Pattern], dockerfile_path: str | Path = "Dockerfile",
                 ) -> Iterator[str]:
    """Relative ``/``-separated paths of the context entries to send, in lexical walk order.

    Directories come before their contents; an excluded directory is not listed but is
    still walked when an exception could re-include something inside it; symlinks are
    listed, never followed. The Dockerfile (if inside ``root``) and ``.dockerignore`` are
    always sent, as the docker CLI does.
    """
    root = Path(root)
    rules = list(patterns)
    keep = [".dockerignore"]
    relative = os.path.relpath(Path(root, dockerfile_path), root)
    if not relative.startswith(".."):
        keep.append(Path(relative).as_posix())
    probe = Matcher(rules)
    rules += [Pattern.compile("!" + _literal(name)) for name in keep if probe.matches(name)]
    yield from _walk(root, "", Matcher(rules))


def _walk(root: Path, prefix: str, matcher: Matcher) -> Iterator[str]:
    with os.scandir(root / prefix if prefix else root) as entries:
        ordered = sorted(entries, key=lambda entry: entry.name)
    for entry in ordered:
        relative = prefix + entry.name
        excluded = matcher.matches(relative)
        if entry.is_dir(follow_symlinks=False):
            if not excluded:
                yield relative
                yield from _walk(root, relative + "/", matcher)
            elif matcher.may_include_under(relative):
                yield from _walk(root, relative + "/", matcher)
        elif not excluded:
            yield relative
