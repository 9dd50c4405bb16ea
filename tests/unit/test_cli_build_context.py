"""The build context tar of ``berth build``: .dockerignore, the Dockerfile's place, stdin, sizes."""

from __future__ import annotations

import io
import os
import tarfile
from types import SimpleNamespace

import pytest

from berth.cli.buildcontext import (
    BuildContext,
    ContextError,
    directory_context,
    is_git_url,
    is_url,
    looks_like_archive,
    prepare_context,
)
from berth.cli.commands.build import build_params
from berth.cli.tarstream import DataEntry, TarStream, tar_header


def _members(ctx: BuildContext) -> dict[str, tarfile.TarInfo]:
    data = b"".join(ctx.body or [])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(ctx: BuildContext, name: str) -> bytes:
    data = b"".join(ctx.body or [])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.fixture
def context(tmp_path):
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "skip").mkdir()
    (root / "Dockerfile").write_text("FROM busybox\nCOPY . /\n")
    (root / "a.txt").write_text("a\n")
    (root / "sub" / "s").write_text("s\n")
    (root / "skip" / "x").write_text("x\n")
    (root / "skip" / "keep").write_text("k\n")
    (root / "ignored.txt").write_text("i\n")
    os.symlink("a.txt", root / "sub" / "link")
    return root


@pytest.mark.parametrize(("ignore", "expected"), [
    ("", [".dockerignore", "Dockerfile", "a.txt", "ignored.txt", "skip", "skip/keep", "skip/x", "sub",
          "sub/link", "sub/s"]),
    ("ignored.txt\nskip\n", [".dockerignore", "Dockerfile", "a.txt", "sub", "sub/link", "sub/s"]),
    # exceptions re-include below an excluded directory; Dockerfile and .dockerignore always go
    ("*\n!skip/keep\n", [".dockerignore", "Dockerfile", "skip/keep"]),
    ("**/s\nDockerfile\n.dockerignore\n", [".dockerignore", "Dockerfile", "a.txt", "ignored.txt", "skip",
                                          "skip/keep", "skip/x", "sub", "sub/link"]),
])
def test_dockerignore_selects_entries(context, ignore, expected):
    (context / ".dockerignore").write_text(ignore)
    ctx = directory_context(str(context), "", None, ".dockerfile.x")
    assert sorted(_members(ctx)) == expected
    assert ctx.dockerfile == "Dockerfile"


def test_entries_are_docker_shaped(context):
    ctx = directory_context(str(context), "", None, ".dockerfile.x")
    members = _members(ctx)
    link = members["sub/link"]
    assert link.issym() and link.linkname == "a.txt"
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members.values())
    assert members["sub"].isdir() and members["a.txt"].mtime == int(os.stat(context / "a.txt").st_mtime)
    # no padding to tarfile's 10 KiB record: entries then two zero blocks, as Go's writer ends a tar
    blocks = sum(512 + -(-m.size // 512) * 512 for m in members.values())
    assert ctx.reported_size() == blocks + 1024


def test_dockerfile_specific_ignore_file_wins(context):
    (context / ".dockerignore").write_text("a.txt\n")
    (context / "Dockerfile.dockerignore").write_text("sub\n")
    names = _members(directory_context(str(context), str(context / "Dockerfile"), None, ".dockerfile.x"))
    assert "a.txt" in names and "sub" not in names


def test_dockerfile_in_a_subdirectory(context):
    (context / "sub" / "Dockerfile.dev").write_text("FROM busybox\n")
    (context / ".dockerignore").write_text("sub\n")
    ctx = directory_context(str(context), str(context / "sub" / "Dockerfile.dev"), None, ".dockerfile.x")
    assert ctx.dockerfile == "sub/Dockerfile.dev"
    assert "sub/Dockerfile.dev" in _members(ctx) and "sub/s" not in _members(ctx)


def test_outside_dockerfile_is_added_under_a_random_name(context, tmp_path):
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\nCMD [\"x\"]\n")
    (context / ".dockerignore").write_text("ignored.txt")
    ctx = directory_context(str(context), str(outside), None, ".dockerfile.0123456789abcdef0123")
    assert ctx.dockerfile == ".dockerfile.0123456789abcdef0123"
    members = _members(ctx)
    assert list(members)[-1] == ".dockerfile.0123456789abcdef0123"
    assert members[ctx.dockerfile].mode == 0o600
    assert _read(ctx, ctx.dockerfile) == outside.read_bytes()
    assert _read(ctx, ".dockerignore") == b"ignored.txt\n.dockerfile.0123456789abcdef0123\n"
    # docker counts an amended context up to the end of the injected Dockerfile's data
    assert ctx.reported_size() == ctx.stream.written - 1024 - (512 - len(outside.read_bytes()))


def test_stdin_dockerfile_with_a_directory_context(context):
    ctx = directory_context(str(context), "", b"FROM busybox\n", ".dockerfile.aa")
    assert _read(ctx, ".dockerfile.aa") == b"FROM busybox\n"
    assert ".dockerfile.aa" in _read(ctx, ".dockerignore").decode()
    assert "Dockerfile" in _members(ctx)


@pytest.mark.parametrize(("spec", "dockerfile", "message"), [
    ("missing-dir", "", 'path "missing-dir" not found'),
    (None, "nope", "unable to evaluate symlinks in Dockerfile path: lstat {cwd}/nope: no such file or directory"),
])
def test_context_errors(context, monkeypatch, spec, dockerfile, message):
    monkeypatch.chdir(context.parent)
    with pytest.raises(ContextError) as err:
        directory_context(spec or str(context), dockerfile, None, ".dockerfile.x")
    assert str(err.value) == message.format(cwd=context.parent)


def test_empty_dockerfile_is_refused(context):
    (context / "Dockerfile").write_text("")
    with pytest.raises(ContextError, match=r"^the Dockerfile \(Dockerfile\) cannot be empty$"):
        directory_context(str(context), "", None, ".dockerfile.x")


def test_stdin_dockerfile_alone():
    ctx = prepare_context("-", "", io.BytesIO(b"FROM busybox\n"))
    assert ctx.dockerfile == "Dockerfile"
    assert _read(ctx, "Dockerfile") == b"FROM busybox\n"
    assert ctx.reported_size() == 2048


def test_stdin_tar_is_sent_as_is(context):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(context / "Dockerfile", "Dockerfile")
    ctx = prepare_context("-", "", io.BytesIO(buf.getvalue()))
    assert b"".join(ctx.body or []) == buf.getvalue()
    assert ctx.reported_size() == len(buf.getvalue()) == 10240


@pytest.mark.parametrize(("head", "expected"), [
    (b"\x1f\x8b\x08\x00", True),
    (b"BZh91AY", True),
    (b"\xfd7zXZ\x00\x00", True),
    (b"FROM busybox\n" * 100, False),
    (b"FROM busybox\n", False),
])
def test_looks_like_archive(head, expected):
    assert looks_like_archive(head) is expected


def test_looks_like_archive_accepts_a_tar_header():
    info = tarfile.TarInfo("Dockerfile")
    assert looks_like_archive(tar_header(info) + b"\0" * 512)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_looks_like_archive_rejects_a_leading_extension_header(fmt):
    """docker's check reads one 512-byte header; PAX records and GNU long names need the next block."""
    info = tarfile.TarInfo("x" * 150)
    assert not looks_like_archive(info.tobuf(fmt, "utf-8", "surrogateescape"))


@pytest.mark.parametrize(("spec", "git", "url"), [
    ("https://example.invalid/ctx.tar.gz", False, True),
    ("https://example.invalid/repo.git#main:sub", True, True),
    ("git://example.invalid/repo", True, False),
    ("git@example.invalid:repo", True, False),
    ("github.com/docker/cli", True, False),
    ("./dir", False, False),
])
def test_url_kinds(spec, git, url):
    assert (is_git_url(spec), is_url(spec)) == (git, url)


def test_remote_context_has_no_body():
    ctx = prepare_context("https://example.invalid/repo.git#v1:docker", "Dockerfile.alt", io.BytesIO())
    assert (ctx.body, ctx.remote, ctx.dockerfile) == (None, "https://example.invalid/repo.git#v1:docker",
                                                      "Dockerfile.alt")


def test_pax_only_when_ustar_cannot_hold_the_entry():
    short = tarfile.TarInfo("a" * 99)
    split = tarfile.TarInfo("d" * 120 + "/" + "f" * 90)  # fits ustar's prefix + name
    long = tarfile.TarInfo("x" * 200)
    unicode = tarfile.TarInfo("café")
    assert [len(tar_header(i)) for i in (short, split, long, unicode)] == [512, 512, 1536, 1536]


def test_data_entry_and_counts():
    stream = TarStream([DataEntry("f", b"12345", 0o644, 7)])
    data = b"".join(stream)
    assert len(data) == stream.written == 512 + 512 + 1024
    assert stream.data_end == 517


def _args(**overrides):
    defaults = dict(tag=[], quiet=False, no_cache=False, rm=True, force_rm=False, pull=False, target="",
                    network="default", platform="", cgroup_parent="", cpuset_cpus="", cpuset_mems="",
                    cpu_shares=0, cpu_quota=0, cpu_period=0, isolation="", memory="", memory_swap="",
                    shm_size="", ulimit=[], build_arg=[], label=[], cache_from=[], add_host=[])
    return SimpleNamespace(**{**defaults, **overrides})


def test_build_params_defaults():
    params = build_params(_args(), BuildContext(None, "Dockerfile"))
    assert {k: v for k, v in params.items() if v is not None} == {"dockerfile": "Dockerfile", "version": "1"}


def test_build_params_flags(monkeypatch):
    monkeypatch.setenv("FROM_ENV", "e")
    monkeypatch.delenv("UNSET_ARG", raising=False)
    args = _args(tag=["a:1", "b"], quiet=True, no_cache=True, rm=False, force_rm=True, pull=True, target="t",
                 network="host", memory="64m", shm_size="1g", ulimit=["nofile=100:200"],
                 build_arg=["X=1", "FROM_ENV", "UNSET_ARG"], label=["l=v", "a=b"], cache_from=["busybox"])
    params = {k: v for k, v in build_params(args, BuildContext(None, "Dockerfile")).items() if v is not None}
    assert params == {
        "t": ["a:1", "b"], "dockerfile": "Dockerfile", "q": True, "nocache": True, "rm": False, "forcerm": True,
        "pull": True, "target": "t", "networkmode": "host", "memory": 67108864, "shmsize": 1073741824,
        "ulimits": '[{"Name":"nofile","Hard":200,"Soft":100}]',
        "buildargs": '{"FROM_ENV":"e","UNSET_ARG":null,"X":"1"}', "labels": '{"a":"b","l":"v"}',
        "cachefrom": '["busybox"]', "version": "1"}


@pytest.mark.parametrize("tag", ["BAD", "a:b:c", "ok:tag@sha256:abc"])
def test_bad_tags_are_flag_errors(capsys, tag):
    from berth.cli.commands.build import _check_tags
    from berth.cli.flags import FlagSet
    with pytest.raises(SystemExit) as exit_info:
        _check_tags(FlagSet("berth build", ""), ["good:1", tag])
    assert exit_info.value.code == 125
    assert capsys.readouterr().err.startswith(f'invalid argument "{tag}" for "-t, --tag" flag: invalid reference format')
