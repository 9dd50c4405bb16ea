"""Metadata instructions through a real berthd: the config they make, the history docker writes,
variable expansion, ENTRYPOINT/CMD semantics, and a side-by-side comparison with dockerd 20.10."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_build_support import (
    Dir,
    build,
    context_tar,
    created_by,
    inspect,
    post_build,
    require_containers,
    run_output,
)

# Each instruction and the created_by dockerd 20.10 records for it (seen on a real dockerd).
METADATA = [
    ("ARG A=1", "/bin/sh -c #(nop)  ARG A=1"),
    ("ARG B", "/bin/sh -c #(nop)  ARG B"),
    ('LABEL l1=v1 "l 2"="v 2"', "/bin/sh -c #(nop)  LABEL l1=v1 l 2=v 2"),
    ('ENV E=1 F="x y"', "/bin/sh -c #(nop)  ENV E=1 F=x y"),
    ("EXPOSE 80 443/udp", "/bin/sh -c #(nop)  EXPOSE 443/udp 80"),
    ("COPY a.txt /dst/", "/bin/sh -c #(nop) COPY file:00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
                         " in /dst/ "),
    ("COPY d /dd", "/bin/sh -c #(nop) COPY dir:7b09826b37202f827ee056101fcee118e0c2b9a7b98a2f642208b693327b0316 in /dd "),
    ("ADD a.txt rel", "/bin/sh -c #(nop) ADD file:00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
                      " in rel "),
    ("WORKDIR /w", "/bin/sh -c #(nop) WORKDIR /w"),
    ("WORKDIR sub", "/bin/sh -c #(nop) WORKDIR /w/sub"),
    ("USER nobody", "/bin/sh -c #(nop)  USER nobody"),
    ('VOLUME /data ["/v2"]', "/bin/sh -c #(nop)  VOLUME [/data [/v2]]"),
    ("STOPSIGNAL SIGTERM", "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM"),
    ("HEALTHCHECK --interval=5s CMD true",
     """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\\x00'}"""),
    ("HEALTHCHECK --retries=3 --timeout=1m30s CMD [\"true\"]",
     """/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true"] "0s" "1m30s" "0s" '\\x03'}"""),
    ('SHELL ["/bin/sh", "-ec"]', "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]"),  # the new shell already
    ("ONBUILD RUN echo onbuild", "/bin/sh -ec #(nop)  ONBUILD RUN echo onbuild"),
    ("MAINTAINER me", "/bin/sh -ec #(nop)  MAINTAINER me"),
    ('ENTRYPOINT ["echo"]', '/bin/sh -ec #(nop)  ENTRYPOINT ["echo"]'),
    ("CMD echo hi", '/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "echo hi"]'),
]
FILES = {"a.txt": "hello\n", "d": Dir(), "d/f": "ff\n"}


def _dockerfile(lines: list[str]) -> str:
    return "FROM busybox\n" + "".join(line + "\n" for line in lines)


def test_history_and_config(bdaemon):
    tag = f"meta-{uuid.uuid4().hex[:8]}:1"
    result = build(bdaemon, {"Dockerfile": _dockerfile([i for i, _ in METADATA]), **FILES}, t=tag,
                   buildargs={"B": "2"})
    assert result.error is None, result.output
    assert result.steps()[0] == f"Step 1/{len(METADATA) + 1} : FROM busybox"
    assert result.output.endswith(f"Successfully tagged {tag}\n")
    assert created_by(bdaemon, tag)[-len(METADATA):] == [expected for _, expected in METADATA]
    image = inspect(bdaemon, tag)
    config = image["Config"]
    assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "E=1", "F=x y"]
    assert config["Labels"] == {"l1": "v1", "l 2": "v 2"}
    assert config["ExposedPorts"] == {"80/tcp": {}, "443/udp": {}}
    assert config["Volumes"] == {"/data": {}, "[/v2]": {}}
    assert (config["User"], config["WorkingDir"], config["StopSignal"]) == ("nobody", "/w/sub", "SIGTERM")
    # The interval left out of the second HEALTHCHECK is the first one's, as dockerd keeps it.
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Timeout": 90_000_000_000,
                                     "Retries": 3}
    assert config["Shell"] == ["/bin/sh", "-ec"] and config["OnBuild"] == ["RUN echo onbuild"]
    assert config["Entrypoint"] == ["echo"] and config["Cmd"] == ["/bin/sh", "-ec", "echo hi"]
    assert image["Author"] == "me"
    assert image["ContainerConfig"]["Cmd"] == ["/bin/sh", "-ec", "#(nop) ", 'CMD ["/bin/sh" "-ec" "echo hi"]']
    parent = inspect(bdaemon, image["Parent"])
    assert config["Image"] == parent["Id"] and parent["Config"]["Cmd"] is None


def test_entrypoint_clears_inherited_cmd_only(bdaemon):
    base, after = f"ep-{uuid.uuid4().hex[:8]}", f"ep2-{uuid.uuid4().hex[:8]}"
    build(bdaemon, {"Dockerfile": "FROM busybox\nENTRYPOINT [\"echo\"]\n"}, t=base)
    assert inspect(bdaemon, base)["Config"]["Cmd"] is None  # busybox's CMD ["sh"] is gone
    build(bdaemon, {"Dockerfile": "FROM busybox\nCMD [\"a\"]\nENTRYPOINT [\"echo\"]\n"}, t=after)
    assert inspect(bdaemon, after)["Config"]["Cmd"] == ["a"]


def test_run_uses_entrypoint_and_cmd(bdaemon):
    require_containers(bdaemon)
    tag = f"epcmd-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, {"Dockerfile": 'FROM busybox\nENTRYPOINT ["echo", "ep"]\nCMD ["default"]\n'}, t=tag)
    assert result.error is None, result.output
    assert run_output(bdaemon, tag) == "ep default\n"
    assert run_output(bdaemon, tag, "given", "args") == "ep given args\n"


@pytest.mark.parametrize("lines, expected_env, expected", [
    (["ARG A=1", "ENV B=${A}x C=$B"], ["B=1x", "C="], {}),
    (["ENV A=1", "ENV A=2 B=$A"], ["A=2", "B=1"], {}),
    (["ARG A", "ENV B=${A:-unset}"], ["B=unset"], {}),
    (["ARG V=default", "ENV V2=$V"], ["V2=given"], {"V": "given"}),
    (["ENV DIR=/app", "WORKDIR $DIR/x", "LABEL where=\"$DIR\" 'lit'='$DIR'"], ["DIR=/app"],
     {"WorkingDir": "/app/x", "Labels": {"where": "/app", "lit": "$DIR"}}),
    (["ARG P=8080", "EXPOSE $P ${P}/udp"], [], {"ExposedPorts": {"8080/tcp": {}, "8080/udp": {}}}),
])
def test_expansion(bdaemon, lines, expected_env, expected):
    build_args = {"V": expected.pop("V")} if "V" in expected else {}
    tag = f"exp-{uuid.uuid4().hex[:8]}"
    result = build(bdaemon, {"Dockerfile": _dockerfile(lines)}, t=tag, buildargs=build_args)
    assert result.error is None, result.output
    config = inspect(bdaemon, tag)["Config"]
    assert config["Env"][1:] == expected_env
    for key, value in expected.items():
        assert config[key] == value


def test_meta_args_in_from_and_label_option(bdaemon):
    tag = f"metaarg-{uuid.uuid4().hex[:8]}"
    dockerfile = "ARG BASE=nosuchimage\nFROM ${BASE}\nARG BASE\nENV FROM_META=$BASE\n"
    result = build(bdaemon, {"Dockerfile": dockerfile}, t=tag, buildargs={"BASE": "busybox", "X": "1", "Y": "2"},
                   labels={"b": "x y", "a": "1"})
    assert result.error is None, result.output
    assert result.steps() == ["Step 1/6 : ARG BASE=nosuchimage", "Step 2/6 : FROM ${BASE}", "Step 3/6 : ARG BASE",
                              "Step 4/6 : ENV FROM_META=$BASE", "Step 5/6 : LABEL a=1", "Step 6/6 : LABEL b=x y"]
    assert "[Warning] One or more build-args [X Y] were not consumed\n" in result.output
    config = inspect(bdaemon, tag)["Config"]
    assert config["Env"][-1] == "FROM_META=busybox" and config["Labels"] == {"a": "1", "b": "x y"}


def test_side_by_side_with_dockerd(bdaemon, dockerd):
    dockerfile = _dockerfile([i for i, _ in METADATA] + ["COPY --chown=1:2 a.txt d /multi/"])
    files = {"Dockerfile": dockerfile, **FILES}
    tag = f"sbs-{uuid.uuid4().hex[:8]}:1"
    ours = post_build(bdaemon.host, context_tar(files), {"t": tag, "buildargs": {"B": "2"}})
    try:
        theirs = post_build(dockerd.host, context_tar(files), {"t": tag, "buildargs": {"B": "2"}})
        assert ours.error is None and theirs.error is None, (ours.output, theirs.output)
        count = len(METADATA) + 1
        assert created_by(bdaemon, tag)[-count:] == created_by(dockerd, tag)[-count:]
        mine, real = inspect(bdaemon, tag), inspect(dockerd, tag)
        for key in ("Env", "Cmd", "Entrypoint", "Labels", "ExposedPorts", "Volumes", "User", "WorkingDir", "Shell",
                    "Healthcheck", "OnBuild", "StopSignal"):
            assert mine["Config"].get(key) == real["Config"].get(key), key
        assert mine["Author"] == real["Author"] and mine["Size"] == real["Size"]
    finally:
        dockerd.docker("rmi", tag)

