"""Pure parts of the container commands: the ``ps`` columns, ``--since`` values and run's exit statuses.

Expected texts are docker 20.10's (captured from ``docker ps`` against dockerd 20.10 for the same
``/containers/json`` data).
"""

from __future__ import annotations

import json
import time

import pytest

from berth.cli import output
from berth.cli.commands import ps, run
from berth.timeutil import timestamp_param

# /containers/json "Ports" of: -p 8000-8002:8000-8002 --expose 7000-7003 --expose 7005 -p 9000:90/udp
# -p 127.0.0.1::81 -p 5000:5000/udp, in the order dockerd 20.10 returned them
DAEMON_PORTS = json.loads(
    '[{"IP": "0.0.0.0", "PrivatePort": 8000, "PublicPort": 8000, "Type": "tcp"}, {"IP": "::", "PrivatePort": 8000, '
    '"PublicPort": 8000, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 8001, "PublicPort": 8001, "Type": "tcp"}, '
    '{"IP": "::", "PrivatePort": 8001, "PublicPort": 8001, "Type": "tcp"}, {"IP": "127.0.0.1", "PrivatePort": 81, '
    '"PublicPort": 32769, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 5000, "PublicPort": 5000, "Type": "udp"}, '
    '{"IP": "::", "PrivatePort": 5000, "PublicPort": 5000, "Type": "udp"}, {"PrivatePort": 7000, "Type": "tcp"}, '
    '{"PrivatePort": 7002, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 8002, "PublicPort": 8002, "Type": "tcp"}, '
    '{"IP": "::", "PrivatePort": 8002, "PublicPort": 8002, "Type": "tcp"}, {"IP": "0.0.0.0", "PrivatePort": 90, '
    '"PublicPort": 9000, "Type": "udp"}, {"IP": "::", "PrivatePort": 90, "PublicPort": 9000, "Type": "udp"}, '
    '{"PrivatePort": 7001, "Type": "tcp"}, {"PrivatePort": 7003, "Type": "tcp"}, {"PrivatePort": 7005, "Type": "tcp"}]')


@pytest.mark.parametrize("ports,text", [
    ([], ""),
    (DAEMON_PORTS, "7000-7003/tcp, 0.0.0.0:5000->5000/udp, :::5000->5000/udp, 7005/tcp, "
                   "0.0.0.0:8000-8002->8000-8002/tcp, :::8000-8002->8000-8002/tcp, 127.0.0.1:32769->81/tcp, "
                   "0.0.0.0:9000->90/udp, :::9000->90/udp"),
    ([{"PrivatePort": 99, "Type": "tcp"},
      {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 32768, "Type": "udp"},
      {"IP": "::", "PrivatePort": 53, "PublicPort": 32768, "Type": "udp"},
      {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
      {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
     "99/tcp, 0.0.0.0:32768->53/udp, :::32768->53/udp, 0.0.0.0:8080->80/tcp, :::8080->80/tcp"),
    ([{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 80, "Type": "udp"}, {"PrivatePort": 81, "Type": "tcp"}],
     "80-81/tcp, 80/udp"),
])
def test_ports_column(ports, text):
    assert ps.display_ports(ports) == text


SUMMARY = {
    "Id": "5b64ead366b0513c542be61b47670fe41ecde9ea40e47dae3b20292b46efd94f",
    "Names": ["/web", "/other/alias"], "Image": "busybox",
    "ImageID": "sha256:156a92b73b9b05c73e7913dd02fd806c91ab03a50b0f3086eee05dddfb18e679",
    "Command": "sh -c 'echo out; echo err >&2; sleep 100'", "Created": 1795985949,
    "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
    "Labels": {"x": "y", "a": "b"}, "State": "running", "Status": "Up 1 second", "SizeRw": 12, "SizeRootFs": 1980000,
    "NetworkSettings": {"Networks": {"bridge": {}, "alpha": {}}},
    "Mounts": [{"Type": "volume", "Name": "0123456789abcdef0123", "Driver": "local"},
               {"Type": "bind", "Source": "/tmp", "Driver": ""}],
}


@pytest.mark.parametrize("field,trunc,value", [
    ("ID", True, "5b64ead366b0"), ("ID", False, SUMMARY["Id"]),
    ("Names", True, "web"), ("Names", False, "web,other/alias"),
    ("Command", True, "\"sh -c 'echo out; ec…\""), ("Command", False, "\"sh -c 'echo out; echo err >&2; sleep 100'\""),
    ("Ports", True, "0.0.0.0:8080->80/tcp"), ("State", True, "running"), ("Status", True, "Up 1 second"),
    ("Size", True, "12B (virtual 1.98MB)"), ("Labels", True, "a=b,x=y"),
    ("Mounts", True, "0123456789abcd…,/tmp"), ("Mounts", False, "0123456789abcdef0123,/tmp"),
    ("LocalVolumes", True, "1"), ("Networks", True, "alpha,bridge"),
])
def test_row_fields(field, trunc, value):
    assert getattr(ps.ContainerRow(SUMMARY, trunc), field) == value


def test_row_label_and_created():
    row = ps.ContainerRow(SUMMARY, True)
    assert row.Label("x") == "y" and row.Label("missing") == ""
    assert row.RunningFor.endswith(" ago")
    assert row.CreatedAt.startswith(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(SUMMARY["Created"])))


@pytest.mark.parametrize("image,image_id,shown", [
    ("busybox", SUMMARY["ImageID"], "busybox"),
    ("busybox:latest", SUMMARY["ImageID"], "busybox:latest"),
    ("docker.io/library/busybox:1.36", SUMMARY["ImageID"], "busybox:1.36"),
    ("busybox@sha256:" + "a" * 64, SUMMARY["ImageID"], "busybox"),
    ("busybox:1@sha256:" + "a" * 64, SUMMARY["ImageID"], "busybox:1"),
    ("localhost:5000/app:v1", SUMMARY["ImageID"], "localhost:5000/app:v1"),
    (SUMMARY["ImageID"], SUMMARY["ImageID"], "156a92b73b9b"),
    ("156a92b73b9b", SUMMARY["ImageID"], "156a92b73b9b"),
    ("", SUMMARY["ImageID"], "<no image>"),
])
def test_image_column(image, image_id, shown):
    assert ps.ContainerRow({**SUMMARY, "Image": image, "ImageID": image_id}, True).Image == shown


def test_render_table_with_label_header():
    rows = [ps.ContainerRow(SUMMARY, True)]
    fmt = 'table {{.Names}}\\t{{.Label "com.example.foo-bar_baz"}}\\t{{.ID}}'
    text = output.render(fmt, rows, ps.PS_TABLE, ps.PS_TITLES)
    assert text == ("NAMES     foo bar baz   CONTAINER ID\n"
                    "web                     5b64ead366b0\n")


def test_render_default_table_header_only():
    assert output.render(ps.PS_TABLE, [], ps.PS_TABLE, ps.PS_TITLES) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n")


def test_render_json_is_gos_encoding():
    (line,) = output.render("{{json .}}", [ps.ContainerRow(SUMMARY, True)], ps.PS_TABLE, ps.PS_TITLES).splitlines()
    assert line.startswith('{"Command":"\\"sh -c \'echo out; ec…\\"","CreatedAt":')
    assert '"Ports":"0.0.0.0:8080-\\u003e80/tcp"' in line
    assert list(json.loads(line)) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts",
                                      "Names", "Networks", "Ports", "RunningFor", "Size", "State", "Status"]


def test_ps_format_is_tried_on_an_empty_row_first(capsys):
    """docker ps refuses a --format field no container has before listing (so also with no rows)."""
    assert ps.ps(None, ["--format", "table {{.Foo}}\\t{{.Names}}"], "berth ps") == 1
    assert capsys.readouterr().err == ('failed to execute template: template: :1:3: executing "" at <.Foo>: '
                                       "can't evaluate field Foo in type ContainerRow\n")


def test_render_plain_template():
    rows = [ps.ContainerRow(SUMMARY, True)]
    assert output.render("{{.Names}}\\t{{.State}}", rows, ps.PS_TABLE, ps.PS_TITLES) == "web\trunning\n"


NOW = 1_700_000_000.25


@pytest.mark.parametrize("value,expected", [
    ("10m", str(int(NOW) - 600)), ("1h30m", str(int(NOW) - 5400)), ("1.5s", str(int(NOW - 1.5))),
    ("2013-01-02T13:23:37Z", "1357133017.000000000"),
    ("2013-01-02T13:23:37.5+01:00", "1357129417.500000000"),
    ("2013-01-02T13:23:37.123456789Z", "1357133017.123456789"),
    ("1700000000", "1700000000"), ("1700000000.5", "1700000000.5"), ("0", "0"),
    ("2013-01-02", f"{int(time.mktime((2013, 1, 2, 0, 0, 0, 0, 0, -1)))}.000000000"),
    ("2013-01-02T13:23", f"{int(time.mktime((2013, 1, 2, 13, 23, 0, 0, 0, -1)))}.000000000"),
])
def test_logs_timestamps(value, expected):
    assert timestamp_param(value, NOW) == expected


def test_logs_timestamp_refuses():
    with pytest.raises(ValueError, match='failed to parse value as time or duration: "abc"'):
        timestamp_param("abc", NOW)


@pytest.mark.parametrize("message,status", [
    ('Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: '
     'unable to start container process: exec: "nonexist": executable file not found in $PATH: unknown', 127),
    ('Error response from daemon: exec: "/x": stat /x: no such file or directory: unknown', 127),
    ('Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: '
     'unable to start container process: exec: "/etc": permission denied: unknown', 126),
    ("Error response from daemon: exec: /etc: is a directory", 126),
    ("Error response from daemon: Conflict. The container name \"/x\" is already in use", 125),
    ("invalid reference format", 125),
])
def test_start_error_status(message, status):
    assert run.start_error_status(message) == status
