"""berth.images.reference against docker's reference rules (distribution/reference, Docker 20.10).

Validity and messages were checked against the docker CLI, which parses references itself; newer
docker puts the name in the lowercase message ("repository name (library/Busybox) must be
lowercase"), Docker 20.10 does not, and berth follows 20.10.
"""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.images.reference import (
    Reference,
    is_image_id_prefix,
    parse_normalized_named,
    parse_repository_tag,
    validate_digest,
    with_default_tag,
)

HEX64 = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX64}"

# input -> (str(ref), ref.familiar(), domain, path, tag, digest)
VALID = [
    ("busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox", None, None),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36.1", "docker.io/library/busybox:1.36.1", "busybox:1.36.1", "docker.io", "library/busybox", "1.36.1", None),
    ("library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox", None, None),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox", None, None),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox", None, None),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox", None, None),
    ("index.docker.io/busybox:1", "docker.io/library/busybox:1", "busybox:1", "docker.io", "library/busybox", "1", None),
    ("registry-1.docker.io/library/busybox", "registry-1.docker.io/library/busybox",
     "registry-1.docker.io/library/busybox", "registry-1.docker.io", "library/busybox", None, None),
    ("user/app", "docker.io/user/app", "user/app", "docker.io", "user/app", None, None),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io", "user/app", "v1", None),
    ("a/b/c/d", "docker.io/a/b/c/d", "a/b/c/d", "docker.io", "a/b/c/d", None, None),
    ("library/a/b", "docker.io/library/a/b", "library/a/b", "docker.io", "library/a/b", None, None),
    ("localhost/app", "localhost/app", "localhost/app", "localhost", "app", None, None),
    ("localhost:5000/app", "localhost:5000/app", "localhost:5000/app", "localhost:5000", "app", None, None),
    ("localhost:5000/ns/app:tag", "localhost:5000/ns/app:tag", "localhost:5000/ns/app:tag", "localhost:5000",
     "ns/app", "tag", None),
    ("myreg:5000/ns/img:tag", "myreg:5000/ns/img:tag", "myreg:5000/ns/img:tag", "myreg:5000", "ns/img", "tag", None),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app", "127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
    ("myreg.example.com/app", "myreg.example.com/app", "myreg.example.com/app", "myreg.example.com", "app", None, None),
    ("MyReg.example.com/app", "MyReg.example.com/app", "MyReg.example.com/app", "MyReg.example.com", "app", None, None),
    ("my-reg.example.com:443/a/b:c", "my-reg.example.com:443/a/b:c", "my-reg.example.com:443/a/b:c",
     "my-reg.example.com:443", "a/b", "c", None),
    ("[::1]:5000/foo", "[::1]:5000/foo", "[::1]:5000/foo", "[::1]:5000", "foo", None, None),
    ("a__b", "docker.io/library/a__b", "a__b", "docker.io", "library/a__b", None, None),
    ("a--b", "docker.io/library/a--b", "a--b", "docker.io", "library/a--b", None, None),
    ("a---b-c", "docker.io/library/a---b-c", "a---b-c", "docker.io", "library/a---b-c", None, None),
    ("a.b_c", "docker.io/library/a.b_c", "a.b_c", "docker.io", "library/a.b_c", None, None),
    ("9", "docker.io/library/9", "9", "docker.io", "library/9", None, None),
    ("a:b", "docker.io/library/a:b", "a:b", "docker.io", "library/a", "b", None),
    ("foo:5000", "docker.io/library/foo:5000", "foo:5000", "docker.io", "library/foo", "5000", None),
    ("busybox:Tag_1.x-y", "docker.io/library/busybox:Tag_1.x-y", "busybox:Tag_1.x-y", "docker.io", "library/busybox",
     "Tag_1.x-y", None),
    ("busybox:_tag", "docker.io/library/busybox:_tag", "busybox:_tag", "docker.io", "library/busybox", "_tag", None),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}", "docker.io", "library/busybox",
     None, DIGEST),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}", "docker.io",
     "library/busybox", "1", DIGEST),
    (f"localhost:5000/app@{DIGEST}", f"localhost:5000/app@{DIGEST}", f"localhost:5000/app@{DIGEST}", "localhost:5000",
     "app", None, DIGEST),
    ("busybox@sha512:" + HEX64 * 2, "docker.io/library/busybox@sha512:" + HEX64 * 2, "busybox@sha512:" + HEX64 * 2,
     "docker.io", "library/busybox", None, "sha512:" + HEX64 * 2),
    # not a hex ID: 63 and 65 hex digits are names
    (HEX64[:63], f"docker.io/library/{HEX64[:63]}", HEX64[:63], "docker.io", f"library/{HEX64[:63]}", None, None),
    (HEX64 + "0", f"docker.io/library/{HEX64}0", HEX64 + "0", "docker.io", f"library/{HEX64}0", None, None),
    # a first component with "." that is no valid domain reads as a path, as in distribution/reference
    ("foo_bar.com/x", "foo_bar.com/x", "foo_bar.com/x", "", "foo_bar.com/x", None, None),
]

INVALID = [
    ("", "invalid reference format"),
    ("a___b", "invalid reference format"),
    ("a..b", "invalid reference format"),
    ("a._b", "invalid reference format"),
    ("a-", "invalid reference format"),
    ("_a", "invalid reference format"),
    ("a_", "invalid reference format"),
    (".a", "invalid reference format"),
    ("a.", "invalid reference format"),
    ("a/", "invalid reference format"),
    ("/a", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a/b/", "invalid reference format"),
    ("a:", "invalid reference format"),
    (":a", "invalid reference format"),
    (":", "invalid reference format"),
    ("a:b:c", "invalid reference format"),
    ("busybox::tag", "invalid reference format"),
    ("busybox:-tag", "invalid reference format"),
    ("busybox:.tag", "invalid reference format"),
    ("busybox:t@g", "invalid reference format"),
    ("busybox@", "invalid reference format"),
    ("busybox@sha256", "invalid reference format"),
    ("busybox@sha256:", "invalid reference format"),
    ("busybox@sha256:xyz", "invalid reference format"),
    ("busybox@1sha:" + HEX64[:32], "invalid reference format"),
    ("reg-.example.com/a", "invalid reference format"),
    ("reg.example.com./a", "invalid reference format"),
    ("[::1/foo", "invalid reference format"),
    (" busybox", "invalid reference format"),
    ("busybox ", "invalid reference format"),
    ("bus box", "invalid reference format"),
    ("busyböx", "invalid reference format"),
    ("busybox:läst", "invalid reference format"),
    ("busybox\n", "invalid reference format"),
    ("busybox:" + "a" * 129, "invalid reference format"),
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("ABC", "invalid reference format: repository name must be lowercase"),
    ("busyBox:latest", "invalid reference format: repository name must be lowercase"),
    ("user/App", "invalid reference format: repository name must be lowercase"),
    ("localhost:5000/App", "invalid reference format: repository name must be lowercase"),
    ("docker.io/Library/busybox", "invalid reference format: repository name must be lowercase"),
    (f"busybox@SHA256:{HEX64}", "invalid reference format: repository name must be lowercase"),
    (HEX64, f"invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings"),
    (f"busybox@sha256:{HEX64[:32]}", "invalid checksum digest length"),
    (f"busybox@sha256:{HEX64}a", "invalid checksum digest length"),
    (f"busybox@sha512:{HEX64}", "invalid checksum digest length"),
    (f"busybox@sha256:{HEX64[:-6]}ABCDEF", "invalid checksum digest format"),
    ("busybox@md5:" + HEX64[:32], "unsupported digest algorithm"),
    ("busybox@sha256+b64:" + HEX64[:32], "unsupported digest algorithm"),
]


@pytest.mark.parametrize(("text", "full", "familiar", "domain", "path", "tag", "digest"), VALID)
def test_parse_valid(text: str, full: str, familiar: str, domain: str, path: str, tag: str | None,
                     digest: str | None) -> None:
    ref = parse_normalized_named(text)
    assert ref == Reference(domain, path, tag, digest)
    assert (str(ref), ref.familiar()) == (full, familiar)


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_normalized_named(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "name", "familiar_name"), [
    ("busybox:1", "docker.io/library/busybox", "busybox"),
    ("user/app", "docker.io/user/app", "user/app"),
    ("library/a/b", "docker.io/library/a/b", "library/a/b"),
    ("localhost:5000/x", "localhost:5000/x", "localhost:5000/x"),
    ("quay.io/library/x", "quay.io/library/x", "quay.io/library/x"),
])
def test_names(text: str, name: str, familiar_name: str) -> None:
    ref = parse_normalized_named(text)
    assert (ref.name, ref.familiar_name) == (name, familiar_name)


@pytest.mark.parametrize(("domain", "path_length", "ok"), [
    ("localhost", 245, True),  # localhost/ + 245 = 255 characters
    ("localhost", 246, False),
    ("docker.io", 237, True),  # docker.io/library/ + 237 = 255
    ("docker.io", 238, False),
])
def test_name_length_limit(domain: str, path_length: int, ok: bool) -> None:
    text = ("localhost/" if domain == "localhost" else "") + "a" * path_length + ":tag"
    if ok:
        assert len(parse_normalized_named(text).name) == 255
    else:
        with pytest.raises(InvalidParameter, match="^repository name must not be more than 255 characters$"):
            parse_normalized_named(text)


def test_tag_length_limit() -> None:
    assert parse_normalized_named("busybox:" + "a" * 128).tag == "a" * 128


@pytest.mark.parametrize(("text", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1", "docker.io/library/busybox:1"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
])
def test_with_default_tag(text: str, want: str) -> None:
    assert str(with_default_tag(parse_normalized_named(text))) == want


@pytest.mark.parametrize(("text", "tag", "want"), [
    ("busybox", "1.36", "busybox:1.36"),
    ("busybox:old", "new", "busybox:new"),
    (f"busybox@{DIGEST}", "v1", f"busybox:v1@{DIGEST}"),
    ("busybox", "a" * 128, "busybox:" + "a" * 128),
    ("busybox", "_x", "busybox:_x"),
])
def test_with_tag(text: str, tag: str, want: str) -> None:
    assert parse_normalized_named(text).with_tag(tag).familiar() == want


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b", "tag\n", "läst"])
def test_with_tag_invalid(tag: str) -> None:
    with pytest.raises(InvalidParameter, match="^invalid tag format$"):
        parse_normalized_named("busybox").with_tag(tag)


@pytest.mark.parametrize(("text", "want"), [
    ("busybox", ("busybox", "")),
    ("busybox:1.36", ("busybox", "1.36")),
    ("localhost:5000/app", ("localhost:5000/app", "")),
    ("localhost:5000/app:v1", ("localhost:5000/app", "v1")),
    ("a/b:c/d", ("a/b:c/d", "")),
    (f"busybox@{DIGEST}", ("busybox", DIGEST)),
    (f"localhost:5000/app@{DIGEST}", ("localhost:5000/app", DIGEST)),
    ("busybox:", ("busybox", "")),
    ("", ("", "")),
])
def test_parse_repository_tag(text: str, want: tuple[str, str]) -> None:
    assert parse_repository_tag(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("a", True),
    ("0123", True),
    (HEX64, True),
    (DIGEST, True),
    ("sha256:0123", True),
    (HEX64 + "0", False),
    ("", False),
    ("sha256:", False),
    ("ABCDEF", False),
    ("busybox", False),
    ("sha512:0123", False),
    ("0123:tag", False),
])
def test_is_image_id_prefix(text: str, want: bool) -> None:
    assert is_image_id_prefix(text) is want


@pytest.mark.parametrize(("digest", "message"), [
    (DIGEST, None),
    ("sha384:" + "a" * 96, None),
    ("sha512:" + "a" * 128, None),
    ("sha256", "invalid checksum digest format"),
    ("sha256:", "invalid checksum digest format"),
    (":" + HEX64, "invalid checksum digest format"),
    ("sha256:" + HEX64.upper(), "invalid checksum digest format"),
    ("sha256:" + HEX64[:-1], "invalid checksum digest length"),
    ("md5:" + HEX64[:32], "unsupported digest algorithm"),
    ("md-5!:" + HEX64[:32], "invalid checksum digest format"),
])
def test_validate_digest(digest: str, message: str | None) -> None:
    if message is None:
        validate_digest(digest)
    else:
        with pytest.raises(InvalidParameter) as caught:
            validate_digest(digest)
        assert str(caught.value) == message


def test_reference_is_a_frozen_value() -> None:
    ref = parse_normalized_named("busybox")
    assert ref == parse_normalized_named("docker.io/library/busybox")
    assert len({ref, parse_normalized_named("index.docker.io/busybox")}) == 1
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]
