"""Multi-stage builds through a real berthd: --target, COPY --from (name, index, image), unneeded
stages skipped, independent stages built at the same time, output kept in Dockerfile order."""

from __future__ import annotations

import uuid

from tests.integration.test_build_support import build, inspect, require_containers, run_output

MULTI = """\
ARG GREETING=hi
FROM busybox AS deps
ARG GREETING
RUN echo "$GREETING from deps" > /deps.txt
FROM busybox AS broken
RUN exit 1
FROM scratch AS files
COPY data.txt /data.txt
FROM deps AS final
COPY --from=files /data.txt /from-name.txt
COPY --from=0 /deps.txt /from-index.txt
COPY --from=busybox /bin/busybox /from-image
CMD ["cat", "/deps.txt", "/from-name.txt", "/from-index.txt"]
"""


def test_multi_stage_skips_unneeded_stages(bdaemon):
    require_containers(bdaemon)
    tag = f"multi-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, {"Dockerfile": MULTI, "data.txt": "data\n"}, t=tag)
    assert result.error is None, result.output
    steps = result.steps()
    assert "Step 5/13 : FROM busybox AS broken" not in steps and "Step 6/13 : RUN exit 1" not in steps
    assert steps[0] == "Step 1/13 : ARG GREETING=hi" and steps[-1].startswith("Step 13/13 : CMD")
    assert run_output(bdaemon, tag) == "hi from deps\ndata\nhi from deps\n"
    # One aux ID per stage built, the target's last.
    aux = [m["aux"]["ID"] for m in result.messages if "aux" in m]
    assert len(aux) == 3 and aux[-1] == inspect(bdaemon, tag)["Id"]


def test_target(bdaemon):
    tag = f"target-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, {"Dockerfile": MULTI, "data.txt": "data\n"}, t=tag, target="files")
    assert result.error is None, result.output
    assert result.steps() == ["Step 1/8 : ARG GREETING=hi", "Step 7/8 : FROM scratch AS files",
                              "Step 8/8 : COPY data.txt /data.txt"]
    image = inspect(bdaemon, tag)
    assert len(image["RootFS"]["Layers"]) == 1 and image["Config"]["Cmd"] is None


def test_independent_stages_run_concurrently_output_in_order(bdaemon):
    require_containers(bdaemon)
    clock = "cut -d' ' -f1 /proc/uptime"
    stamp = f"RUN {clock} > /start && sleep 2 && {clock} > /end"
    dockerfile = (f"FROM busybox AS a\nRUN echo stage-a\n{stamp}\n"
                  f"FROM busybox AS b\nRUN echo stage-b\n{stamp}\n"
                  "FROM busybox\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\n"
                  "COPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n"
                  "RUN cat /a.start /a.end /b.start /b.end\n")
    result = build(bdaemon, {"Dockerfile": dockerfile, "nonce": uuid.uuid4().hex})
    assert result.error is None, result.output
    a_start, a_end, b_start, b_end = map(float, result.output.split("Running in")[-1].splitlines()[1:5])
    assert a_start < b_end and b_start < a_end  # the two sleeps overlapped
    out = result.output
    assert out.index("stage-a") < out.index("Step 4/") < out.index("stage-b") < out.index("Step 7/")


def test_copy_from_errors(bdaemon):
    missing = build(bdaemon, {"Dockerfile": "FROM busybox\nCOPY --from=nostage /a /b\n"})
    assert missing.error == "invalid from flag value nostage: No such image: nostage:latest"
    later = build(bdaemon, {"Dockerfile": "FROM busybox\nFROM busybox\nCOPY --from=1 /a /b\n"})
    assert later.error == "invalid from flag value 1: index out of bounds"
    no_file = build(bdaemon, {"Dockerfile": "FROM busybox AS a\nFROM busybox\nCOPY --from=a /nope /b\n"})
    assert no_file.error == "COPY failed: stat nope: file does not exist"
