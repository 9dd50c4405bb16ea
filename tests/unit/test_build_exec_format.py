"""Go fmt renderings in build history, build options from the query, the ordered output stream."""

from __future__ import annotations

import asyncio

import pytest

from berth.build import gofmt
from berth.build.options import parse_build_query
from berth.build.output import BuildOutput, error_message, short_id
from berth.errors import InvalidParameter


@pytest.mark.parametrize("ns, expected", [
    (0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (300_000_000, "300ms"), (1_500_000_000, "1.5s"),
    (5_000_000_000, "5s"), (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"),
    (3_723_005_000_000, "1h2m3.005s"), (-2_000_000_000, "-2s"),
])
def test_duration_is_go_duration_string(ns, expected):
    assert gofmt.duration(ns) == expected


def test_lists_and_healthcheck_as_docker_writes_them():
    assert gofmt.plain_list(["/data", "[/v2]"]) == "[/data [/v2]]"
    # Strings dockerd 20.10 wrote for HEALTHCHECK --interval=5s CMD true / --retries=3 --timeout=1m30s.
    assert gofmt.healthcheck(["CMD-SHELL", "true"], 5 * 10**9, 0, 0, 0) == \
        '&{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x00\'}'
    assert gofmt.healthcheck(["CMD", "true"], 0, 90 * 10**9, 0, 3) == '&{["CMD" "true"] "0s" "1m30s" "0s" \'\\x03\'}'


def test_build_query_defaults():
    options = parse_build_query({})
    assert options.dockerfile == "Dockerfile" and options.remove and not options.force_remove
    assert options.tags == () and options.build_args == {} and options.network_mode == ""


def test_build_query_values():
    options = parse_build_query({
        "t": ["app", "reg.local:5000/ns/app:1", "app"], "q": ["1"], "nocache": ["true"], "rm": ["0"],
        "forcerm": ["1"], "buildargs": ['{"A": "1", "B": null}'], "labels": ['{"x": "y"}'],
        "cachefrom": ['["base:1"]'], "target": ["t"], "networkmode": ["none"], "memory": ["1048576"],
        "extrahosts": ["h:1.2.3.4"], "shmsize": ["1000"], "dockerfile": ["sub/Dockerfile.dev"],
    })
    assert options.tags == ("docker.io/library/app:latest", "reg.local:5000/ns/app:1")
    assert (options.quiet, options.no_cache, options.remove, options.force_remove) == (True, True, False, True)
    assert options.build_args == {"A": "1", "B": None} and options.labels == {"x": "y"}
    assert options.cache_from == ("base:1",) and options.target == "t" and options.network_mode == "none"
    assert options.host_config == {"Memory": 1048576, "ShmSize": 1000, "ExtraHosts": ["h:1.2.3.4"]}
    assert options.dockerfile == "sub/Dockerfile.dev"


@pytest.mark.parametrize("query, message", [
    ({"t": ["Bad:Tag"]}, "invalid reference format: repository name must be lowercase"),
    ({"buildargs": ["[1]"]}, "invalid buildargs value: [1]"),
    ({"memory": ["lots"]}, "invalid memory value: lots"),
    ({"squash": ["1"]}, "squash is only supported with experimental mode"),
])
def test_build_query_errors(query, message):
    with pytest.raises(InvalidParameter) as err:
        parse_build_query(query)
    assert err.value.message == message


def _drain(output: BuildOutput) -> list:
    items = []
    while not output.queue.empty():
        items.append(output.queue.get_nowait())
    return items


def test_channels_come_out_in_order():
    async def scenario() -> list:
        out = BuildOutput()
        first, second, third = out.channel(), out.channel(), out.channel()
        third.stream("c1")
        second.stream("b1")
        first.stream("a1")
        second.close()            # closed but not live yet: held until the first closes
        third.stream("c2")
        first.close()
        third.close()
        out.finish()
        return _drain(out)

    assert [m and m["stream"] for m in asyncio.run(scenario())] == ["a1", "b1", "c1", "c2", None]


def test_step_aux_and_quiet_failure():
    async def scenario() -> list:
        out = BuildOutput(quiet=True)
        chan = out.channel()
        chan.step(1, 2, "FROM busybox")
        chan.aux("sha256:" + "ab" * 32)
        out.fail("boom", 3)
        return _drain(out)

    messages = asyncio.run(scenario())
    # Quiet output is held back and only shown, in order, before the error.
    assert messages == [{"stream": "Step 1/2 : FROM busybox"}, {"stream": "\n"}, {"aux": {"ID": "sha256:" + "ab" * 32}},
                        {"errorDetail": {"code": 3, "message": "boom"}, "error": "boom"}]


def test_error_message_and_short_id():
    assert error_message("x") == {"errorDetail": {"message": "x"}, "error": "x"}
    assert short_id("sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741") == "3f57d9401f8d"
