"""Docker image references, parsed and normalised as docker's distribution/reference package does.

Grammar (distribution/reference, reference.go; docs.docker.com "docker image tag")::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [ domain "/" ] path-component [ "/" path-component ]*
    domain           := host [ ":" port-number ]
    host             := domain-name | "[" IPv6 address "]"
    domain-name      := domain-component [ "." domain-component ]*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    path-component   := /[a-z0-9]+/ [ separator /[a-z0-9]+/ ]*
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" /[0-9a-fA-F]{32,}/

Docker's normalisation (ParseNormalizedNamed): a first component is a registry domain only when it
contains "." or ":" or is "localhost"; otherwise the domain is docker.io, and a single-component
path gets the "library/" prefix (``busybox`` is ``docker.io/library/busybox``). Messages are those
of Docker 20.10 (API v1.41), e.g. ``invalid reference format: repository name must be lowercase``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from berth.errors import InvalidParameter

if TYPE_CHECKING:
    import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
#: The longest name (domain and path) a reference may have.
NAME_TOTAL_LENGTH_MAX = 255
#: Hex length of each digest algorithm docker supports (opencontainers/go-digest).
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_HEX = frozenset("0123456789abcdef")
_patterns: dict[str, re.Pattern[str]] = {}


def _pattern(kind: str) -> re.Pattern[str]:
    """The compiled expression for "reference", "name", "tag" or "digest" (compiled on first use)."""
    if not _patterns:
        import re

        alnum = "[a-z0-9]+"
        path_component = f"{alnum}(?:(?:[._]|__|-+){alnum})*"
        domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
        host = rf"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])"
        domain = f"{host}(?::[0-9]+)?"
        path = f"{path_component}(?:/{path_component})*"
        tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}"
        digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
        _patterns.update(
            reference=re.compile(f"((?:{domain}/)?{path})(?::({tag}))?(?:@({digest}))?"),
            name=re.compile(f"(?:({domain})/)?({path})"),
            tag=re.compile(tag),
            digest=re.compile(digest),
        )
    return _patterns[kind]


@dataclass(frozen=True)
class Reference:
    """A named image reference: ``domain`` ("docker.io", "localhost:5000"), ``path``
    ("library/busybox"), and an optional ``tag`` and ``digest`` ("sha256:<64 hex>").

    Build one with :func:`parse_normalized_named`; the fields are already normalised.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The name as docker shows it: ``busybox``, ``user/app``, ``localhost:5000/x``
        (distribution/reference FamiliarName)."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        rest = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        return rest if rest != self.path and "/" not in rest else self.path

    def __str__(self) -> str:
        """The full normalised form: ``docker.io/library/busybox:latest``."""
        return self.name + self._suffix()

    def familiar(self) -> str:
        """The form docker prints: ``busybox:latest``, ``myreg:5000/ns/img:tag``,
        ``busybox@sha256:...`` (distribution/reference FamiliarString)."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """This reference with ``tag`` (a digest is kept, as WithTag does).
        Raises InvalidParameter("invalid tag format") for a tag outside ``[\\w][\\w.-]{0,127}``."""
        if not _pattern("tag").fullmatch(tag):
            raise InvalidParameter("invalid tag format")
        return replace(self, tag=tag)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_normalized_named(s: str) -> Reference:
    """Parse a reference as the docker CLI and daemon do (distribution/reference ParseNormalizedNamed).

    ``busybox`` -> docker.io/library/busybox, ``index.docker.io/x/y`` -> docker.io/x/y,
    ``localhost:5000/app:1`` keeps its domain. No default tag is added (see with_default_tag).
    Raises InvalidParameter with docker's messages: ``invalid reference format``,
    ``invalid reference format: repository name must be lowercase``,
    ``repository name must not be more than 255 characters``, ``invalid repository name (<s>),
    cannot specify 64-byte hexadecimal strings``, and go-digest's ``invalid checksum digest
    length`` / ``invalid checksum digest format`` / ``unsupported digest algorithm``.
    """
    if len(s) == 64 and _is_hex(s):
        raise InvalidParameter(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(s)
    remote_name = remainder.partition(":")[0]
    if remote_name.lower() != remote_name:
        raise InvalidParameter("invalid reference format: repository name must be lowercase")
    return _parse(f"{domain}/{remainder}")


def _split_docker_domain(s: str) -> tuple[str, str]:
    first, slash, rest = s.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        domain, remainder = DEFAULT_DOMAIN, s
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse(s: str) -> Reference:
    """distribution/reference Parse of a string that has a name."""
    match = _pattern("reference").fullmatch(s)
    if match is None:
        if not s:
            raise InvalidParameter("repository name must have at least one component")
        if _pattern("reference").fullmatch(s.lower()):
            raise InvalidParameter("repository name must be lowercase")
        raise InvalidParameter("invalid reference format")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidParameter(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        validate_digest(digest)
    name_match = _pattern("name").fullmatch(name)
    assert name_match is not None  # the name already matched as part of the reference
    return Reference(name_match.group(1) or "", name_match.group(2), tag, digest)


def validate_digest(digest: str) -> None:
    """Check ``algorithm:hex`` as go-digest's Digest.Validate does; raises InvalidParameter with
    ``invalid checksum digest format``, ``unsupported digest algorithm`` or ``invalid checksum
    digest length``. Supported: sha256 (64 hex), sha384 (96), sha512 (128), lowercase hex."""
    algorithm, colon, encoded = digest.partition(":")
    if not algorithm or not colon or not encoded:
        raise InvalidParameter("invalid checksum digest format")
    if algorithm not in DIGEST_HEX_LENGTHS:
        if not _pattern("digest").fullmatch(digest):
            raise InvalidParameter("invalid checksum digest format")
        raise InvalidParameter("unsupported digest algorithm")
    if len(encoded) != DIGEST_HEX_LENGTHS[algorithm]:
        raise InvalidParameter("invalid checksum digest length")
    if not _is_hex(encoded):
        raise InvalidParameter("invalid checksum digest format")


def with_default_tag(ref: Reference) -> Reference:
    """``ref`` with the tag ``latest`` when it has neither tag nor digest (TagNameOnly)."""
    return ref if ref.tag or ref.digest else replace(ref, tag=DEFAULT_TAG)


def parse_repository_tag(s: str) -> tuple[str, str]:
    """Split ``repo[:tag]`` or ``repo@digest`` without validating, as docker's ParseRepositoryTag:
    the part after "@" is returned as the tag; otherwise the string splits on its last ":" when no
    "/" follows it (so ``localhost:5000/app`` has no tag). The tag is "" when there is none."""
    if "@" in s:
        repo, _, digest = s.partition("@")
        return repo, digest.partition("@")[0]
    repo, colon, tag = s.rpartition(":")
    if colon and "/" not in tag:
        return repo, tag
    return s, ""


def is_image_id_prefix(s: str) -> bool:
    """Whether ``s`` can be (a prefix of) an image ID: 1 to 64 lowercase hex digits, with or
    without the ``sha256:`` prefix."""
    hex_part = s.removeprefix("sha256:")
    return 0 < len(hex_part) <= 64 and _is_hex(hex_part)


def _is_hex(s: str) -> bool:
    return _HEX.issuperset(s)
