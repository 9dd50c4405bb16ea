"""RUN through a real berthd: real containers, streamed output, exit codes, intermediate
containers, build args in history, heredocs, ONBUILD triggers, reproducible layers."""

from __future__ import annotations

import re
import uuid

from tests.integration.test_build_support import api_get, build, created_by, inspect, require_containers


def _containers(daemon) -> list[dict]:
    return api_get(daemon, "/containers/json?all=1")


def test_run_output_history_and_cleanup(bdaemon):
    require_containers(bdaemon)
    tag = f"run-{uuid.uuid4().hex[:8]}"
    dockerfile = ("FROM busybox\nARG A=1\nARG HTTP_PROXY\nWORKDIR /w\nUSER nobody\n"
                  "RUN echo out-$A; echo err-$HTTP_PROXY >&2; pwd; id -u\n"
                  "USER root\nRUN [\"sh\", \"-c\", \"echo exec > /exec.txt\"]\n")
    result = build(bdaemon, {"Dockerfile": dockerfile}, t=tag, buildargs={"HTTP_PROXY": "http://proxy"})
    assert result.error is None, result.output
    out = result.output
    assert "out-1\n" in out and "/w\n" in out and "65534\n" in out
    assert "\x1b[91merr-http://proxy\n\x1b[0m" in out  # stderr, marked red as dockerd does
    running = re.findall(r" ---> Running in ([0-9a-f]{12})\n", out)
    # (a red stderr line ends with its reset code, which then starts the next line, as with dockerd)
    removed = re.findall(r"Removing intermediate container ([0-9a-f]{12})\n", out)
    assert len(running) == 2 and running == removed, out
    assert _containers(bdaemon) == []
    history = created_by(bdaemon, tag)[-3:]
    assert history[0:1] + history[2:] == ["|2 A=1 HTTP_PROXY=http://proxy /bin/sh -c echo out-$A; echo err-$HTTP_PROXY >&2; pwd; id -u",
                       "|2 A=1 HTTP_PROXY=http://proxy sh -c echo exec > /exec.txt"]
    image = inspect(bdaemon, tag)
    assert image["ContainerConfig"]["Cmd"][:3] == ["|2", "A=1", "HTTP_PROXY=http://proxy"]
    assert image["Container"].startswith(running[1])
    assert len(image["RootFS"]["Layers"]) == len(inspect(bdaemon, "busybox")["RootFS"]["Layers"]) + 2


def test_undeclared_proxy_arg_is_hidden(bdaemon):
    require_containers(bdaemon)
    result = build(bdaemon, {"Dockerfile": "FROM busybox\nRUN echo $HTTP_PROXY\n"}, t="proxy",
                   buildargs={"HTTP_PROXY": "http://p"})
    assert "http://p\n" in result.output
    assert created_by(bdaemon, "proxy")[-1] == "|0 /bin/sh -c echo $HTTP_PROXY"


def test_failing_run(bdaemon):
    require_containers(bdaemon)
    build(bdaemon, {"Dockerfile": "FROM busybox\nLABEL v=1\n"}, t="keep:1")
    before = inspect(bdaemon, "keep:1")["Id"]
    failed = build(bdaemon, {"Dockerfile": "FROM busybox\nRUN echo partial > /p\nRUN exit 3\n"}, t="keep:1")
    assert failed.error == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert failed.error_code == 3
    assert inspect(bdaemon, "keep:1")["Id"] == before  # no tag moved
    # rm (the default) keeps the failed step's container, as docker does; the successful one is gone.
    left = _containers(bdaemon)
    assert len(left) == 1 and left[0]["State"] == "exited"
    forced = build(bdaemon, {"Dockerfile": "FROM busybox\nRUN exit 4\n"}, forcerm=1)
    assert forced.error_code == 4 and "Removing intermediate container" in forced.output
    assert len(_containers(bdaemon)) == 1


def test_command_not_found(bdaemon):
    require_containers(bdaemon)
    result = build(bdaemon, {"Dockerfile": "FROM busybox\nRUN nonexistentcmd\n"})
    assert result.error == "The command '/bin/sh -c nonexistentcmd' returned a non-zero code: 127"
    assert "nonexistentcmd: not found" in result.output


def test_heredocs(bdaemon):
    require_containers(bdaemon)
    dockerfile = ("FROM busybox\nENV WHO=world\n"
                  "RUN <<EOF\necho script-line-1\necho script-$WHO\nEOF\n"
                  "RUN cat <<EOF > /greeting\nhello $WHO\nEOF\n"
                  "RUN cat <<'EOF' > /raw\nhello $WHO\nEOF\n"
                  "RUN cat /greeting /raw\n")
    result = build(bdaemon, {"Dockerfile": dockerfile})
    assert result.error is None, result.output
    assert "script-line-1\nscript-world\n" in result.output
    assert "hello world\nhello $WHO\n" in result.output


def test_onbuild_triggers_run_downstream(bdaemon):
    require_containers(bdaemon)
    base = f"onbuild-{uuid.uuid4().hex[:8]}"
    build(bdaemon, {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\nONBUILD ENV T=1\n"}, t=base)
    child = build(bdaemon, {"Dockerfile": f"FROM {base}\nRUN cat /t; echo T=$T\n"}, t=base + "-child")
    assert child.error is None, child.output
    assert "# Executing 2 build triggers\n" in child.output
    assert "triggered\nT=1\n" in child.output
    config = inspect(bdaemon, base + "-child")["Config"]
    assert config["OnBuild"] is None and "T=1" in config["Env"]


def test_network_none(bdaemon):
    require_containers(bdaemon)
    result = build(bdaemon, {"Dockerfile": "FROM busybox\nRUN ip -o link | cut -d: -f2\n"}, networkmode="none")
    assert result.error is None, result.output
    assert [line.strip() for line in result.output.split("Running in")[1].splitlines()[1:2]] == ["lo"]


def test_no_cache_builds_are_reproducible(bdaemon):
    require_containers(bdaemon)
    dockerfile = ("FROM busybox\nCOPY src /src\nWORKDIR /app/data\n"
                  "RUN mkdir -p /out && echo built > /out/f && touch -d @0 /out/f /out\n")
    files = {"Dockerfile": dockerfile, "src/a": "a", "src/b/c": "c"}
    first = build(bdaemon, files, nocache=1, t="repro:1")
    second = build(bdaemon, files, nocache=1, t="repro:2")
    assert first.error is None and second.error is None, first.output
    assert first.image_id != second.image_id  # configs carry creation times
    assert inspect(bdaemon, "repro:1")["RootFS"] == inspect(bdaemon, "repro:2")["RootFS"]
