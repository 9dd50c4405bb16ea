"""The host's apt sources: which Debian mirror to build images from (read at run time).

Reads ``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/*.list`` (one-line style,
sources.list(5) "ONE-LINE-STYLE FORMAT") and ``/etc/apt/sources.list.d/*.sources`` (deb822
style, sources.list(5) "DEB822-STYLE FORMAT"); files with other names are ignored, as apt
ignores them. The mirror is never written in berth's repository: whatever the machine already
uses is what ``debootstrap`` is given.

Stdlib only; the parsing functions are pure (text in, entries out).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

_SUITE_SUFFIXES = ("-security", "-updates", "-backports", "-proposed-updates", "/updates")


class NoMirror(Exception):
    """No usable ``deb`` entry in the host's apt sources."""


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` or ``deb-src`` entry: ``uri`` (``http://host/debian``), its ``suites``,
    ``components``, ``signed_by`` (a keyring path or ""), and the ``origin`` file it came from."""

    kind: str
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()
    signed_by: str = ""
    origin: str = ""
    options: dict[str, str] = field(default_factory=dict, compare=False)


def _one_line_options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``[ key=value ... ]`` off the front of ``words`` (after the type)."""
    if not words or not words[0].startswith("["):
        return {}, words
    text = " ".join(words)
    end = text.find("]")
    if end < 0:
        return {}, []
    options = {}
    for item in text[1:end].split():
        key, _, value = item.partition("=")
        options[key.lower()] = value
    return options, text[end + 1:].split()


def parse_one_line(text: str, origin: str = "") -> list[AptSource]:
    """Entries of a one-line style file (``deb [signed-by=/k.gpg] http://m/debian bookworm
    main``). Comments (``#`` to the end of the line) and malformed lines are skipped."""
    found = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] not in ("deb", "deb-src"):
            continue
        options, rest = _one_line_options(words[1:])
        if len(rest) < 2:
            continue
        found.append(AptSource(words[0], rest[0], (rest[1],), tuple(rest[2:]),
                               options.get("signed-by", ""), origin, options))
    return found


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs as ``{lowercased field: value}``; continuation lines are appended."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_deb822(text: str, origin: str = "") -> list[AptSource]:
    """Entries of a deb822 ``.sources`` file: one per (type, URI, suite). Stanzas with
    ``Enabled: no`` are skipped; an inline ``Signed-By`` key block counts as no path."""
    found = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        signed_by = stanza.get("signed-by", "")
        if "\n" in signed_by or "BEGIN PGP" in signed_by:
            signed_by = ""
        components = tuple(stanza.get("components", "").split())
        for kind in stanza.get("types", "").split():
            for uri in stanza.get("uris", "").split():
                for suite in stanza.get("suites", "").split():
                    found.append(AptSource(kind, uri, (suite,), components, signed_by, origin))
    return found


def read_host_sources(root: str = "/") -> list[AptSource]:
    """Every entry of the apt sources under ``root`` (``/`` for this machine), in apt's file
    order: ``sources.list`` first, then ``sources.list.d`` by name."""
    etc = os.path.join(root, "etc/apt")
    found: list[AptSource] = []
    paths = [os.path.join(etc, "sources.list")]
    paths += sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")) +
                    glob.glob(os.path.join(etc, "sources.list.d", "*.sources")))
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        parser = parse_deb822 if path.endswith(".sources") else parse_one_line
        found += parser(text, path)
    return found


def _release_suite(suite: str) -> bool:
    return not suite.endswith(_SUITE_SUFFIXES)


def pick_mirror(sources: list[AptSource], suite: str) -> AptSource:
    """The ``deb`` entry to bootstrap ``suite`` from: one naming that very suite with a
    ``main`` component (or none listed) first; else the first entry of a release suite (not
    -security/-updates/-backports), whose mirror is assumed to carry ``suite`` too.

    Raises NoMirror when no ``deb`` entry with an http, https or file URI is found.
    """
    usable = [s for s in sources if s.kind == "deb" and s.uri.split(":", 1)[0] in ("http", "https", "file")]
    usable = [s for s in usable if not s.components or "main" in s.components]
    for source in usable:
        if suite in source.suites:
            return source
    for source in usable:
        if any(_release_suite(s) for s in source.suites) and "security" not in source.uri:
            return source
    raise NoMirror("no Debian mirror found in the host's apt sources (/etc/apt/sources.list, "
                   "/etc/apt/sources.list.d/*.list, *.sources): add a 'deb' entry for the main archive")


def host_mirror(suite: str, root: str = "/") -> AptSource:
    """:func:`pick_mirror` over this machine's apt sources. Raises NoMirror."""
    return pick_mirror(read_host_sources(root), suite)
