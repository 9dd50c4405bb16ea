"""Issue #2 (foundation: image store, API, CLI): one test per acceptance line.

Line 6 (bad input) lives in ``test_images_acceptance_bad_input.py``. Tests that need the real
docker CLI, docker-py or dockerd skip when they are absent; objects made on a dockerd carry unique
names and are removed afterwards (the shared peer dockerd is used by others too).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.daemon_fixture import BERTH, Daemon
from tests.integration.images_support import docker_archive, file, image_config, layer_tar, sha256

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker")
IMAGES_HEADER = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
DOCKERFILE = ('FROM {base}\nENV A=1\nRUN echo hi > /hello && mkdir -p /data\nCOPY f.txt /data/f.txt\n'
              'LABEL x=y\nCMD ["cat", "/hello"]\n')


def uniq(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def docker(host: str, *args: str, input: bytes | str | None = None, check: bool = True,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real docker CLI (``/usr/local/bin/docker``) against ``host``."""
    if DOCKER is None:
        pytest.skip("the docker CLI is not installed")
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run([DOCKER, *args], input=input, capture_output=True, text=not isinstance(input, bytes),
                            env=env, timeout=120, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} against {host} failed: {result.stdout!r} {result.stderr!r}")
    return result


def columns(line: str) -> list[str]:
    """Cells of a table line (docker pads with at least 3 spaces; cells hold single spaces)."""
    return [cell for cell in re.split(r"\s{2,}", line.strip()) if cell]


def same_output(left, right, attempts: int = 3) -> tuple[str, str]:
    """Run both callables until their outputs agree (a "N seconds ago" may tick between the two)."""
    for _ in range(attempts):
        a, b = left(), right()
        if a == b:
            break
    return a, b


# ----- line 1 ------------------------------------------------------------------------------------
def test_line1_import_then_images_lists_it_with_docker_columns(shared_daemon, busybox_tar):
    """1. `berth import busybox.tar busybox` then `berth images` lists it with docker's columns."""
    repo = uniq("acc1-")
    try:
        out = shared_daemon.ok("import", str(busybox_tar), repo)
        assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out)
        lines = shared_daemon.ok("images", repo).splitlines()
        assert columns(lines[0]) == IMAGES_HEADER
        assert len(lines) == 2
        cells = columns(lines[1])
        assert cells[:3] == [repo, "latest", out[7:19]]
        assert re.fullmatch(r"(Less than a second|\d+ seconds?|About a minute) ago", cells[3])
        assert cells[4] == "1.98MB"
        # every cell starts where its header does: Go's tabwriter alignment
        for title in IMAGES_HEADER:
            assert lines[1][lines[0].index(title):].startswith(cells[IMAGES_HEADER.index(title)])
    finally:
        shared_daemon.cli("rmi", repo)


@pytest.fixture
def docker_image(dockerd, tmp_path):
    """On dockerd: an imported busybox and a 6-step build on it, both saved to tars and removed
    from dockerd again (so it, like berth after ``load``, knows no local parents); yields
    ``(names, tar paths)``."""
    imported, built = uniq("acc-imp-") + ":1", uniq("acc-built-") + ":1"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=imported))
    (ctx / "f.txt").write_text("content\n")
    tars = {name: tmp_path / f"{i}.tar" for i, name in enumerate((imported, built))}
    try:
        docker(dockerd.host, "tag", "busybox:latest", imported)
        docker(dockerd.host, "build", "-q", "--no-cache", "--network", "none", "-t", built, str(ctx))
        for name, path in tars.items():
            docker(dockerd.host, "save", "-o", str(path), name)
        docker(dockerd.host, "rmi", built)
        docker(dockerd.host, "load", "-i", str(tars[built]))
        yield (imported, built), tars
    finally:
        docker(dockerd.host, "rmi", "-f", built, imported, check=False)


@pytest.mark.compat
def test_line1_history_and_inspect_print_what_docker_prints(shared_daemon, dockerd, docker_image):
    """1. `berth history busybox` and `berth inspect --format '{{.Id}} {{json .Config.Cmd}}' busybox`
    print what docker prints for the same image (docker's saved image loaded into berthd; also the
    berth CLI against dockerd itself)."""
    names, tars = docker_image
    for path in tars.values():
        shared_daemon.ok("load", "-i", str(path))
    try:
        fmt = "{{.Id}} {{json .Config.Cmd}}"
        for name in names:
            for args in (["history", name], ["history", "--no-trunc", name], ["history", "-H=false", name],
                         ["history", "-q", name], ["inspect", "--format", fmt, name],
                         ["image", "inspect", "-f", "{{json .RootFS}}", name], ["images", name.split(":")[0]]):
                want, got = same_output(lambda a=args: docker(dockerd.host, *a).stdout,
                                        lambda a=args: shared_daemon.ok(*a))
                assert got == want, args
                # and the berth CLI prints the same as docker's against dockerd itself
                want, got = same_output(
                    lambda a=args: docker(dockerd.host, *a).stdout,
                    lambda a=args: subprocess.run([BERTH, *a], capture_output=True, text=True, env=dockerd.env).stdout)
                assert got == want, ("berth CLI against dockerd", args)
        built_history = shared_daemon.ok("history", names[1])
        assert "/bin/sh -c #(nop) COPY file:" in built_history and "…" in built_history
    finally:
        shared_daemon.cli("rmi", *names)


# ----- line 2 ------------------------------------------------------------------------------------
def test_line2_same_tar_same_diff_id_and_same_config_same_image_id(daemon, busybox_tar, tmp_path):
    """2. Importing the same tar twice gives the same diff ID; the same tar and config give the same image ID."""
    first = daemon.ok("import", str(busybox_tar), "twice:1").strip()
    second = daemon.ok("import", str(busybox_tar), "twice:2").strip()
    layers = [daemon.ok("inspect", "-f", "{{json .RootFS.Layers}}", f"twice:{n}") for n in (1, 2)]
    assert layers[0] == layers[1] == json.dumps([sha256(busybox_tar.read_bytes())], separators=(",", ":")) + "\n"
    assert first != second  # the configs differ: each import records its own creation time
    # one snapshot for the shared layer: unpacked once
    assert len([p for p in (daemon.root / "snapshots").iterdir() if p.name != "l"]) == 1

    layer = layer_tar([file("etc/os", "same\n")])
    config = image_config([layer])
    archive = tmp_path / "same.tar"
    archive.write_bytes(docker_archive(config, [layer], ["same:1"]))
    daemon.ok("load", "-i", str(archive))
    assert daemon.ok("inspect", "-f", "{{.Id}}", "same:1").strip() == sha256(config)
    saved = tmp_path / "resaved.tar"
    daemon.ok("save", "-o", str(saved), "same:1")
    (tmp_path / "other").mkdir()
    other = Daemon(tmp_path / "other")
    try:
        other.start()
        other.ok("load", "-i", str(saved))
        assert other.ok("inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "same:1") == \
            daemon.ok("inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "same:1")
    finally:
        other.cleanup()


# ----- line 3 ------------------------------------------------------------------------------------
def shape(text: str) -> list[str]:
    """Output lines with what differs between two daemons masked: IDs, digests, times, sizes."""
    text = re.sub(r"sha256:[0-9a-f]{64}", "DIGEST", text)
    text = re.sub(r"\b[0-9a-f]{64}\b", "HEX", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "ID", text)
    text = re.sub(r"(Less than a second|About an? \w+|\d+ (second|minute|hour|day|week|month|year)s?) ago", "AGO", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", "TIME", text)
    text = re.sub(r"\b\d+(\.\d+)?[kMG]?B\b", "SIZE", text)
    return [re.sub(r" {3,}", "   ", line).rstrip() for line in text.splitlines()]


def engine_keys(version_output: str) -> list[str]:
    """The field names of the ``Engine:`` block of ``docker version`` (empty when there is none)."""
    _, found, rest = version_output.partition(" Engine:\n")
    keys = []
    for line in rest.splitlines() if found else []:
        if not line.startswith("  "):
            break
        keys.append(line.strip().split(":", 1)[0])
    return keys


def docker_session(host: str, busybox_tar: Path, tmp: Path, name: str) -> dict[str, list[str]]:
    """Run the commands of line 3 against ``host``; returns each command's output shape."""
    out: dict[str, list[str]] = {}

    def run(key: str, *args: str, input: bytes | None = None) -> str:
        result = docker(host, *args, input=input)
        out[key] = shape(result.stdout if isinstance(result.stdout, str) else result.stdout.decode())
        return result.stdout

    version = docker(host, "version").stdout
    out["version client"] = version.split("\n\n", 1)[0].splitlines()
    out["version engine keys"] = engine_keys(version)
    label = f"LABEL acc3={name}"
    run("import", "import", "-c", 'CMD ["sh"]', "-c", label, str(busybox_tar), f"{name}:1")
    run("images", "images", name)
    run("tag", "tag", f"{name}:1", f"{name}:2")
    run("image inspect", "image", "inspect", "-f", "{{json .RepoTags}} {{json .Config.Cmd}} {{.Os}}", f"{name}:1")
    inspected = json.loads(docker(host, "image", "inspect", f"{name}:1").stdout)[0]
    out["inspect keys"] = sorted(inspected)
    out["inspect config keys"] = list(inspected["Config"])
    run("history", "history", f"{name}:1")
    run("history -H=false", "history", "-H=false", "--no-trunc", f"{name}:1")
    archive = tmp / f"{name}.tar"
    run("save", "save", "-o", str(archive), f"{name}:1")
    with tarfile.open(archive) as tar:
        out["save members"] = sorted(re.sub(r"[0-9a-f]{64}", "HEX", n) for n in tar.getnames())
    out["save mode"] = [oct(archive.stat().st_mode & 0o777)]
    run("rmi tag", "rmi", f"{name}:2")
    run("rmi", "rmi", f"{name}:1")
    run("load", "load", "-i", str(archive))
    run("load stdin", "load", input=archive.read_bytes())
    run("untag", "rmi", f"{name}:1")
    run("import untagged", "import", "-c", label, str(busybox_tar))
    run("prune", "image", "prune", "-f", "--filter", f"label=acc3={name}")
    run("prune again", "image", "prune", "-f", "--filter", f"label=acc3={name}")
    return out


@pytest.mark.compat
def test_line3_docker_cli_against_berthd_same_shapes_as_dockerd(shared_daemon, dockerd, busybox_tar, tmp_path):
    """3. The real docker CLI (`/usr/local/bin/docker` with `DOCKER_HOST` at berthd): `version`, `images`,
    `image inspect`, `tag`, `rmi`, `history`, `import`, `save`, `load`, `image prune` succeed and print
    the same shapes as against dockerd."""
    name = uniq("acc3-")
    berth = docker_session(shared_daemon.host, busybox_tar, tmp_path, name)
    peer = docker_session(dockerd.host, busybox_tar, tmp_path, name)
    assert berth["version client"] == peer["version client"]
    assert berth["version engine keys"] == peer["version engine keys"]
    for key in peer:
        if key.startswith("version"):
            continue
        assert berth[key] == peer[key], key
    assert berth["prune"][:2] == ["Deleted Images:", "deleted: DIGEST"]


# ----- line 4 ------------------------------------------------------------------------------------
def test_line4_docker_py(shared_daemon, busybox_tar, tmp_path):
    """4. docker-py (client at berthd's socket): `images.list()`, `images.get()`, `images.load()`,
    `api.import_image_from_data()`, `api.tag()`, `images.remove()` work."""
    docker_py = pytest.importorskip("docker")
    client = docker_py.DockerClient(base_url=shared_daemon.host, version="auto")
    repo = uniq("acc4-")
    try:
        result = client.api.import_image_from_data(busybox_tar.read_bytes(), repository=repo, tag="1",
                                                   changes=['CMD ["sh"]'])
        image_id = json.loads(result.strip().splitlines()[-1])["status"] if isinstance(result, str) else None
        image = client.images.get(f"{repo}:1")
        assert image.id == image_id and image.tags == [f"{repo}:1"]
        assert image.attrs["Config"]["Cmd"] == ["sh"]
        assert client.api.tag(image.id, repo, "2") is True
        assert sorted(client.images.get(image.id).tags) == [f"{repo}:1", f"{repo}:2"]
        listed = {i.id: i for i in client.images.list(name=repo)}
        assert sorted(listed[image.id].tags) == [f"{repo}:1", f"{repo}:2"]
        assert image.id in [i.id for i in client.images.list(all=True)]
        assert client.images.list(name=uniq("nothing-")) == []
        assert client.images.get(repo + ":1").history()[0]["Id"] == image.id
        data = b"".join(image.save(named=f"{repo}:1"))
        client.images.remove(f"{repo}:2")
        client.images.remove(f"{repo}:1")
        with pytest.raises(docker_py.errors.ImageNotFound):
            client.images.get(f"{repo}:1")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [image.id] and loaded[0].tags == [f"{repo}:1"]
        with pytest.raises(docker_py.errors.ImageLoadError):
            client.images.load(b"not a tar at all" * 100)
        client.images.remove(image.id, force=True)
        assert image.id not in [i.id for i in client.images.list(all=True)]
    finally:
        for ref in (f"{repo}:1", f"{repo}:2"):
            shared_daemon.cli("rmi", "-f", ref)
        client.close()


# ----- line 5 ------------------------------------------------------------------------------------
@pytest.mark.compat
def test_line5_interchange_with_dockerd(bdaemon, dockerd, docker_image, tmp_path):
    """5. Interchange: `berth save` -> `docker load` and `docker save` -> `berth load` give images with
    equal IDs and layer digests (an import, a multi-layer build and a commit)."""
    fmt = "{{.Id}} {{json .RootFS.Layers}}"
    (dimported, dbuilt), tars = docker_image
    # dockerd -> berth: the import and the 3-layer build dockerd made
    for name in (dimported, dbuilt):
        bdaemon.ok("load", "-i", str(tars[name]))
        assert bdaemon.ok("inspect", "-f", fmt, name) == docker(dockerd.host, "inspect", "-f", fmt, name).stdout
    assert bdaemon.ok("run", "--rm", dbuilt) == "hi\n"
    # berth -> dockerd: a berth build and a berth commit on busybox
    ctx = tmp_path / "bctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base="busybox"))
    (ctx / "f.txt").write_text("content\n")
    built, committed, box = uniq("acc5-built-") + ":1", uniq("acc5-commit-") + ":1", uniq("acc5box")
    bdaemon.ok("build", "-q", "-t", built, str(ctx))
    bdaemon.ok("run", "--name", box, built, "sh", "-c", "echo more > /more; rm /hello")
    bdaemon.ok("commit", "-c", 'CMD ["cat", "/more"]', box, committed)
    archive = tmp_path / "berth.tar"
    bdaemon.ok("save", "-o", str(archive), built, committed)
    try:
        assert docker(dockerd.host, "load", "-i", str(archive)).stdout == \
            f"Loaded image: {built}\nLoaded image: {committed}\n"
        for name in (built, committed):
            mine = bdaemon.ok("inspect", "-f", fmt, name)
            assert docker(dockerd.host, "inspect", "-f", fmt, name).stdout == mine
            assert len(json.loads(mine.split(" ", 1)[1])) == (3 if name == built else 4)
        # and back: docker's save of berth's images loads into a fresh berth with the same IDs
        back = tmp_path / "back.tar"
        docker(dockerd.host, "save", "-o", str(back), built, committed)
        bdaemon.ok("rmi", "-f", built, committed)
        bdaemon.ok("load", "-i", str(back))
        for name in (built, committed):
            assert bdaemon.ok("inspect", "-f", fmt, name) == docker(dockerd.host, "inspect", "-f", fmt, name).stdout
    finally:
        docker(dockerd.host, "rmi", "-f", built, committed, check=False)


# ----- line 7 ------------------------------------------------------------------------------------
PROBE = """
import json, sys
before = set(sys.modules)
from berth.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
new = sorted(set(sys.modules) - before)
sys.stderr.write("\\nMODULES " + json.dumps(new) + "\\n")
"""


def third_party_imports(args: list[str], env: dict[str, str]) -> tuple[list[str], str]:
    """Modules a real ``berth ARGS`` run imports beyond the stdlib and berth itself."""
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                             timeout=60)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stderr.rsplit("MODULES ", 1)[1])
    foreign = [m for m in modules if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "berth"]
    return foreign, result.stdout


def imported_top_level(args: list[str], env: dict[str, str]) -> set[str]:
    """Top-level names ``python -X importtime ARGS`` reports importing."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line} - {"imported package"}


def test_line7_version_and_images_import_no_third_party_module(shared_daemon):
    """7. `berth --version` and `berth images` import no third-party module (a test checks
    `sys.modules`); `bench/cli_startup` prints their start time."""
    env = {**os.environ, "BERTH_HOST": shared_daemon.host}
    for args in (["--version"], ["images"], ["images", "-q"], ["images", "--format", "{{.Repository}}"]):
        foreign, stdout = third_party_imports(args, env)
        assert foreign == [], (args, foreign)
        assert stdout
    # the same holds with -X importtime on the real console script: beyond what the interpreter
    # itself imports at start-up (site, .pth hooks), only the stdlib and berth; names that do not
    # exist are failed optional imports (copy tries org.python.core)
    berth_names = imported_top_level([BERTH, "images"], env)
    baseline = imported_top_level(["-c", "pass"], env)
    foreign = {n for n in berth_names - baseline - set(sys.stdlib_module_names) - {"berth"}
               if importlib.util.find_spec(n) is not None}
    assert foreign == set()


def test_line7_bench_cli_startup_prints_start_times(shared_daemon):
    """7. `bench/cli_startup` prints the median start times of `berth --version` and `berth images`
    (>= 20 runs each) beside docker's when present, as ratios."""
    env = {**os.environ, "BERTH_HOST": shared_daemon.host, "PYTHONPATH": str(ROOT), "CLI_STARTUP_RUNS": "20"}
    env.pop("BENCH_JSON", None)
    result = subprocess.run([sys.executable, "-m", "bench.cli_startup"], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["topic", "case", "unit", "berth"]
    version_row = next(line for line in lines if "berth --version" in line)
    images_row = next(line for line in lines if "berth images" in line)
    for row in (version_row, images_row):
        assert re.search(r"\bms\s+\d+\.\d", row), row
        assert row.split()[-1] == "20"  # runs
        if "docker" in header:  # docker's median and the berth/docker ratio
            assert re.search(r"\d+\.\d\s+\d+\.\d\dx\s+20$", row), row
    assert "20 runs" in result.stdout
