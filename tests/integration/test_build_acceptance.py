"""Issue #4 (builder) acceptance, on Debian base images made with debootstrap.

Where each acceptance line is shown:

1. The seed's Dockerfiles on Debian: :func:`test_seed_cowsay_image`,
   :func:`test_seed_cowsay_entrypoint_and_cmd`, :func:`test_seed_hello_c_single_stage`,
   :func:`test_seed_hello_c_multi_stage` (here).
2. Cache behaviour: :func:`test_cache_rebuild_touch_change_and_no_cache` (here, on the seed's
   hello.c through the CLI and a real directory); more cases (modes, build args, restarts,
   --cache-from) in ``test_build_cache.py``.
3. Parser and expansion cases: ``tests/unit/test_build_acceptance_parser.py`` (one test per
   case) and :func:`test_parser_cases_in_a_real_build` (here, through berthd);
   :func:`test_inherited_cmd_cleared_by_entrypoint` (here, on debian's inherited ``CMD ["bash"]``).
4. The real docker CLI and docker-py: :func:`test_docker_cli_builds_seed_dockerfiles`,
   :func:`test_docker_py_images_build_streams_the_log` (here).
5. Bad input: ``test_build_acceptance_bad_input.py``.
6. ``bench/build.py``: ``test_build_acceptance_bench.py``.

Containers have no internet (and get no network here: ``--network none``, so nothing they do
leaves the machine): packages come in through the context as .deb files fetched on the
host (``contrib/mkimage/debs.py``: ``apt-get download`` of cowsay and the dependencies the image
lacks). The root filesystems and .debs are cached under ``/var/cache/berth-mkimage``, so only
the first run on a machine pays for debootstrap; the images are imported once per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contrib.mkimage import baseimages, debs, mkdebian, rootfs

from tests.daemon_fixture import BERTH, Daemon
from tests.integration.test_build_support import require_containers

# The seed's Dockerfiles ("FROM ubuntu / RUN apt-get update / RUN apt-get -y install cowsay"),
# with the packages from the context instead of the network.
COWSAY = "FROM debian:bookworm\nCOPY debs /debs\nRUN apt-get -y install /debs/*.deb\n"
COWSAY_ENTRYPOINT = ('FROM debian:bookworm\nCOPY debs /debs\nRUN ["dpkg", "-R", "-i", "/debs"]\n'
                     'ENTRYPOINT ["/usr/games/cowsay", "-e", "%%"]\nCMD ["hello world"]\n')
# The seed's C example; build-essential is in the base image (debian:bookworm-build).
HELLO_C = '#include <stdio.h>\n\nint main(void)\n{\n    printf("Hello, World!\\n");\n    return 0;\n}\n'
HELLO = "FROM debian:bookworm-build\nCOPY hello.c /\nRUN make hello\nCMD /hello\n"
HELLO_MULTI = ("FROM debian:bookworm-build AS compiler\nCOPY hello.c /\nRUN make hello\n"
               "FROM debian:bookworm\nCOPY --from=compiler /hello /hello\nCMD /hello\n")


def debian_test(test: Callable[..., None]) -> Callable[..., None]:
    """A test on the Debian images: slow, with room for their fixture to debootstrap on a cold
    cache (~2 minutes) and import them."""
    return pytest.mark.slow(pytest.mark.timeout(900)(test))


def _say(message: str) -> None:
    print(message, flush=True)


@pytest.fixture(scope="module")
def debian_daemon(tmp_path_factory) -> Iterator[Daemon]:
    """A berthd with busybox:latest, debian:bookworm and debian:bookworm-build imported."""
    try:
        for name in ("debian", "debian-build"):
            baseimages.IMAGES[name].make(rootfs.Cache(), _say)
    except rootfs.MkImageError as err:
        pytest.skip(f"the Debian base images cannot be made on this machine: {err}")
    daemon = Daemon(tmp_path_factory.mktemp("debian-daemon"))
    try:
        daemon.start()
        baseimages.ensure_images(list(baseimages.IMAGES), host=daemon.host, cli=BERTH, say=_say)
        yield daemon
    finally:
        daemon.cleanup()


@pytest.fixture(scope="module")
def cowsay_context(tmp_path_factory) -> Path:
    """The cowsay build context: both Dockerfiles and ``debs/`` (cowsay and what it needs)."""
    root = tmp_path_factory.mktemp("cowsay")
    try:
        debs.fetch_debs(["cowsay"], root / "debs", mkdebian.debian_tar("bookworm", say=_say))
    except rootfs.MkImageError as err:
        pytest.skip(f"the cowsay packages cannot be fetched on this machine: {err}")
    (root / "Dockerfile").write_text(COWSAY)
    (root / "Dockerfile.entrypoint").write_text(COWSAY_ENTRYPOINT)
    return root


@pytest.fixture
def hello_context(tmp_path: Path) -> Path:
    """The hello.c build context (source with a unique string, so its first build misses)."""
    (tmp_path / "hello.c").write_text(HELLO_C.replace("Hello, World!", f"Hello, World! {uuid.uuid4().hex[:8]}"))
    (tmp_path / "Dockerfile").write_text(HELLO)
    (tmp_path / "Dockerfile.multi").write_text(HELLO_MULTI)
    return tmp_path


def _tag(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _build(daemon: Daemon, context: Path, tag: str, *flags: str) -> str:
    """``berth build`` of a directory; its stdout."""
    return daemon.ok("build", "--network", "none", *flags, "-t", tag, str(context), timeout=600)


def _run(daemon: Daemon, image: str, *cmd: str) -> str:
    """``berth run --rm`` without a network; its stdout."""
    return daemon.ok("run", "--rm", "--network", "none", image, *cmd)


def _hits(stdout: str) -> list[bool]:
    """For each step after the first FROM: whether it was a cache hit."""
    return [" ---> Using cache\n" in chunk for chunk in re.split(r"^Step \d+/\d+ : ", stdout, flags=re.M)[2:]]


@debian_test
def test_seed_cowsay_image(debian_daemon, cowsay_context):
    """1. The seed's Dockerfiles, on a Debian base made with debootstrap: the cowsay image."""
    tag = _tag("cowsay")
    out = _build(debian_daemon, cowsay_context, tag)
    assert "Setting up cowsay" in out and out.endswith(f"Successfully tagged {tag}:latest\n"), out
    said = _run(debian_daemon, tag, "/usr/games/cowsay", "bonjour")
    assert "< bonjour >" in said and "(oo)" in said


@debian_test
def test_seed_cowsay_entrypoint_and_cmd(debian_daemon, cowsay_context):
    """1. The ENTRYPOINT/CMD cowsay example, where ``run img`` says "hello world" and
    ``run img salut`` says "salut"."""
    tag = _tag("mycowsay")
    _build(debian_daemon, cowsay_context, tag, "-f", str(cowsay_context / "Dockerfile.entrypoint"))
    default = _run(debian_daemon, tag)
    assert "< hello world >" in default and "(%%)" in default
    salut = _run(debian_daemon, tag, "salut")
    assert "< salut >" in salut and "hello world" not in salut


@debian_test
def test_seed_hello_c_single_stage(debian_daemon, hello_context):
    """1. hello.c built with gcc, single-stage."""
    tag = _tag("hello")
    _build(debian_daemon, hello_context, tag)
    assert _run(debian_daemon, tag).startswith("Hello, World! ")
    tools = _run(debian_daemon, tag, "sh", "-c", "command -v gcc; command -v make; ls /hello.c")
    assert tools.split() == ["/usr/bin/gcc", "/usr/bin/make", "/hello.c"]


@debian_test
def test_seed_hello_c_multi_stage(debian_daemon, hello_context):
    """1. hello.c multi-stage, where the multi-stage image holds /hello and no compiler."""
    single, multi = _tag("hello"), _tag("hello-multi")
    _build(debian_daemon, hello_context, single)
    out = _build(debian_daemon, hello_context, multi, "-f", str(hello_context / "Dockerfile.multi"))
    assert "Step 5/6 : COPY --from=compiler /hello /hello" in out
    assert _run(debian_daemon, multi).startswith("Hello, World! ")
    probe = debian_daemon.cli("run", "--rm", "--network", "none", multi, "sh", "-c",
                                "ls /hello; for t in gcc cc make; do command -v $t; done; ls /hello.c")
    assert probe.stdout.split() == ["/hello"] and probe.returncode != 0
    sizes = {tag: int(debian_daemon.ok("image", "inspect", "-f", "{{.Size}}", tag)) for tag in (single, multi)}
    base = int(debian_daemon.ok("image", "inspect", "-f", "{{.Size}}", "debian:bookworm"))
    assert sizes[multi] - base < 1_000_000 < sizes[single] - base - 100_000_000, sizes


@debian_test
def test_cache_rebuild_touch_change_and_no_cache(debian_daemon, hello_context):
    """2. Rebuilding an unchanged Dockerfile hits the cache on every step; ``touch`` on a copied
    file still hits; a content change misses from that COPY on; ``--no-cache`` misses everywhere."""
    tag = _tag("hello-cache")
    first = _build(debian_daemon, hello_context, tag)
    assert _hits(first) == [False, False, False]
    image = debian_daemon.ok("image", "inspect", "-f", "{{.Id}}", tag)
    again = _build(debian_daemon, hello_context, tag)
    assert _hits(again) == [True, True, True] and "Running in" not in again
    source = hello_context / "hello.c"
    os.utime(source, (time.time() + 3600, time.time() + 3600))  # `touch` (a later mtime)
    touched = _build(debian_daemon, hello_context, tag)
    assert _hits(touched) == [True, True, True]
    assert debian_daemon.ok("image", "inspect", "-f", "{{.Id}}", tag) == image
    source.write_text(source.read_text().replace("Hello", "Salut"))
    changed = _build(debian_daemon, hello_context, tag)
    assert _hits(changed) == [False, False, False]
    assert _run(debian_daemon, tag).startswith("Salut, World! ")
    fresh = _build(debian_daemon, hello_context, tag, "--no-cache")
    assert _hits(fresh) == [False, False, False] and fresh.count("Running in") == 1


@debian_test
def test_inherited_cmd_cleared_by_entrypoint(debian_daemon, tmp_path):
    """3. Inherited CMD cleared by ENTRYPOINT (debian:bookworm's ``CMD ["bash"]``), while a CMD
    set in the same Dockerfile is kept (Dockerfile reference, "ENTRYPOINT")."""
    cases = {"FROM debian:bookworm\nENTRYPOINT [\"echo\"]\n": None,
             "FROM debian:bookworm\nCMD [\"a\"]\nENTRYPOINT [\"echo\"]\n": ["a"],
             "FROM debian:bookworm\nLABEL x=1\n": ["bash"]}
    for dockerfile, cmd in cases.items():
        (tmp_path / "Dockerfile").write_text(dockerfile)
        tag = _tag("ep")
        _build(debian_daemon, tmp_path, tag)
        got = debian_daemon.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", tag).strip()
        assert got == ("null" if cmd is None else f'["{cmd[0]}"]'), dockerfile


PARSER_CASES = """\
# escape=`
ARG TAG=latest
ARG OTHER=meta
FROM busybox:$TAG
ARG TAG
ENV a=1 b=$a
ENV c=$a
LABEL hash=x#y tag=[$TAG] other=[$OTHER]
COPY . /ctx/
RUN echo first `
    second # not a comment for the parser; the shell drops it
CMD ["echo", "unterminated]
"""


def test_parser_cases_in_a_real_build(shared_daemon, tmp_path):
    """3. Parser and expansion cases, with the right values, end to end: escape directive at the
    top; mid-line ``#``; invalid-JSON exec form run by the shell; ``ENV a=1 b=$a`` in one line
    vs two; ARG before FROM with and without redeclaration; ``.dockerignore`` with ``**``, ``!``
    and a leading ``/``."""
    require_containers(shared_daemon)
    (tmp_path / "Dockerfile").write_text(PARSER_CASES)
    (tmp_path / ".dockerignore").write_text("**/*.log\n!keep/**\n/build\n")
    for name in ("a.log", "x/y/z.log", "keep/x/a.log", "build/out.o", "src/build", "src/main.c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    tag = _tag("parser")
    out = _build(shared_daemon, tmp_path, tag, "--no-cache")
    assert "Step 9/10 : RUN echo first     second # not a comment for the parser; the shell drops it" in out
    assert "\nfirst second\n" in out
    config = json.loads(shared_daemon.ok("image", "inspect", "-f", "{{json .Config}}", tag))
    assert [e for e in config["Env"] if not e.startswith("PATH=")] == ["a=1", "b=", "c=1"]
    assert config["Labels"] == {"hash": "x#y", "tag": "[latest]", "other": "[]"}
    assert config["Cmd"] == ["/bin/sh", "-c", '["echo", "unterminated]']
    files = _run(shared_daemon, tag, "find", "/ctx", "-type", "f").split()
    assert sorted(files) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/keep/x/a.log", "/ctx/src/build",
                             "/ctx/src/main.c"]


def _docker(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI against ``daemon``; ``build`` and ``run`` without a network."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    offline = [args[0], "--network", "none", *args[1:]] if args[0] in ("build", "run") else list(args)
    return subprocess.run(["docker", "-H", daemon.host, *offline], env=env, capture_output=True, text=True,
                          timeout=600)


@debian_test
@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_docker_cli_builds_seed_dockerfiles(debian_daemon, cowsay_context, hello_context):
    """4. The real docker CLI (``DOCKER_BUILDKIT=0 docker -H <berthd> build``) against berthd builds
    the same Dockerfiles."""
    cowsay, mycowsay, hello = _tag("dcowsay"), _tag("dmycowsay"), _tag("dhello")
    for tag, context, dockerfile in ((cowsay, cowsay_context, "Dockerfile"),
                                     (mycowsay, cowsay_context, "Dockerfile.entrypoint"),
                                     (hello, hello_context, "Dockerfile.multi")):
        built = _docker(debian_daemon, "build", "--no-cache", "-t", tag, "-f", str(context / dockerfile), str(context))
        assert built.returncode == 0, built.stderr
        assert built.stdout.splitlines()[-1] == f"Successfully tagged {tag}:latest"
    assert "< moo >" in _docker(debian_daemon, "run", "--rm", cowsay, "/usr/games/cowsay", "moo").stdout
    assert "< hello world >" in _docker(debian_daemon, "run", "--rm", mycowsay).stdout
    assert "< salut >" in _docker(debian_daemon, "run", "--rm", mycowsay, "salut").stdout
    assert _docker(debian_daemon, "run", "--rm", hello).stdout.startswith("Hello, World! ")


@debian_test
def test_docker_py_images_build_streams_the_log(debian_daemon, cowsay_context, tmp_path):
    """4. docker-py ``images.build(path=..., tag=...)`` works and streams the log."""
    import docker

    client = docker.DockerClient(base_url=debian_daemon.host)
    tag = _tag("pycowsay")
    image, log = client.images.build(path=str(cowsay_context), tag=tag, dockerfile="Dockerfile.entrypoint",
                                     network_mode="none")
    lines = [entry.get("stream", "") for entry in log]
    assert image.tags == [f"{tag}:latest"] and "Step 1/5 : FROM debian:bookworm" in lines
    assert b"< hello world >" in client.containers.run(tag, remove=True, network_mode="none")
    # The low-level generator yields each message as the daemon writes it, not at the end.
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo first && sleep 2 && echo second\n")
    arrivals = {}
    for message in client.api.build(path=str(tmp_path), decode=True, nocache=True, network_mode="none"):
        arrivals.setdefault(message.get("stream"), time.monotonic())
    assert arrivals["second\n"] - arrivals["first\n"] > 1.5, arrivals
