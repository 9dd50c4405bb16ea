"""The image commands' output: rows, ``--format`` (table headers, json, errors), history fields,
filter flags. Expected values are what docker 28's CLI prints for the same summaries."""

from __future__ import annotations

import os
import time

import pytest

from berth.cli import output
from berth.cli.commands.images import (
    HISTORY_TABLE,
    HISTORY_TITLES,
    IMAGE_TITLES,
    IMAGES_TABLE,
    HistoryRow,
    filters_param,
    image_rows,
    rfc3339_local,
)
from berth.cli.flags import FlagError, FlagSet
from berth.gotemplate import TemplateError

ID = "sha256:" + "ab" * 32


def summary(tags=None, digests=None, size=1982853, created=1600000000) -> dict:
    return {"Id": ID, "RepoTags": tags, "RepoDigests": digests, "Size": size, "VirtualSize": size,
            "SharedSize": -1, "Containers": -1, "Created": created}


@pytest.mark.parametrize("tags,digests,show_digests,want", [
    (["busybox:latest"], None, False, [("busybox", "latest", "<none>")]),
    (["<none>:<none>"], ["<none>@<none>"], False, [("<none>", "<none>", "<none>")]),
    (None, None, True, [("<none>", "<none>", "<none>")]),
    (["a:1", "a:2", "b:1"], None, False, [("a", "1", "<none>"), ("a", "2", "<none>"), ("b", "1", "<none>")]),
    (["a:1"], ["a@sha256:11", "a@sha256:22"], True, [("a", "1", "sha256:11"), ("a", "1", "sha256:22")]),
    (["a:1"], ["a@sha256:11"], False, [("a", "1", "<none>")]),
    (["a:1"], ["b@sha256:11"], False, [("a", "1", "<none>"), ("b", "<none>", "")]),
    (["a:1"], ["b@sha256:11"], True, [("a", "1", "<none>"), ("b", "<none>", "sha256:11")]),
    (["localhost:5000/x/y:v1"], None, False, [("localhost:5000/x/y", "v1", "<none>")]),
])
def test_image_rows(tags, digests, show_digests, want):
    rows = image_rows([summary(tags, digests)], True, show_digests)
    assert [(r.Repository, r.Tag, r.Digest) for r in rows] == want


def test_image_row_fields():
    row = image_rows([summary(["busybox:latest"])], True, False)[0]
    assert (row.ID, row.Size, row.VirtualSize, row.SharedSize, row.UniqueSize, row.Containers) == \
        ("abababababab", "1.98MB", "1.983MB", "N/A", "N/A", "N/A")
    assert image_rows([summary(["busybox:latest"])], False, False)[0].ID == ID


def test_json_format_is_go_marshal_of_each_row():
    rows = image_rows([summary(["<none>:<none>"])], True, False)
    text = output.render("json", rows, IMAGES_TABLE, IMAGE_TITLES)
    assert text.startswith('{"Containers":"N/A","CreatedAt":')
    assert '"Digest":"\\u003cnone\\u003e","ID":"abababababab","Repository":"\\u003cnone\\u003e"' in text
    assert text.endswith('"VirtualSize":"1.983MB"}\n')
    assert output.render("{{json .}}", rows, IMAGES_TABLE, IMAGE_TITLES) == text


@pytest.mark.parametrize("value,want", [
    ({"a": "<&>"}, '{"a":"\\u003c\\u0026\\u003e"}'),
    ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'),
    ({"a": "é\u2028"}, '{"a":"é\\u2028"}'),
])
def test_go_json(value, want):
    assert output.go_json(value) == want


class Labelled:
    """A row type that has docker's Label method, as container rows do."""

    Name = "web"

    def Label(self, name: str) -> str:  # noqa: N802
        return {"com.example.tier-name": "front"}.get(name, "")


@pytest.mark.parametrize("fmt,want", [
    ('table {{.Name}}\\t{{.Label "com.example.tier-name"}}', "NAME      tier name\nweb       front\n"),
    ('table {{.Name}}\\t{{.Label "x_y"}}', "NAME      x y\nweb       \n"),
    ('table {{.Name}} {{.Missing}}', None),
])
def test_table_header_calls_methods_with_arguments(fmt, want):
    if want is None:
        with pytest.raises(TemplateError, match="can't evaluate field Missing"):
            output.render(fmt, [Labelled()], "table {{.Name}}", {"Name": "NAME"})
        return
    assert output.render(fmt, [Labelled()], "table {{.Name}}", {"Name": "NAME"}) == want


def test_header_without_rows_and_default_titles():
    assert output.render("table {{.Repository}}\t{{.Foo}}", [], IMAGES_TABLE, IMAGE_TITLES) == \
        "REPOSITORY   <no value>\n"
    assert output.render("table", [], IMAGES_TABLE, IMAGE_TITLES) == \
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


@pytest.mark.parametrize("fmt,message", [
    ("{{.Repository", "template parsing error: template: :1: unclosed action\n"),
    ('table {{.Repository}}\\t{{.Label "x"}}',
     'template parsing error: template: :1:18: executing "" at <.Label>: can\'t evaluate field Label in type '),
])
def test_bad_template_prints_docker_error(capsys, fmt, message):
    rows = image_rows([summary(["busybox:latest"])], True, False)
    assert output.print_rendered(fmt, rows, IMAGES_TABLE, IMAGE_TITLES) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(message)


def test_history_rows(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    item = {"Id": ID, "Created": 1600000000, "CreatedBy": "/bin/sh -c #(nop)\tCOPY file:0123456789abcdef0123 in /",
            "Size": 1234567, "Comment": "c", "Tags": None}
    human = HistoryRow(item, True, True)
    assert (human.ID, human.Size, human.CreatedBy) == \
        ("abababababab", "1.23MB", "/bin/sh -c #(nop) COPY file:0123456789abcdef…")
    assert human.CreatedSince.endswith(" years ago")
    raw = HistoryRow(item, False, False)
    assert (raw.ID, raw.Size, raw.CreatedSince, raw.CreatedAt) == (ID, "1234567", "2020-09-13T12:26:40Z",
                                                                   "2020-09-13T12:26:40Z")
    assert HistoryRow({**item, "Id": "<missing>"}, True, True).ID == "<missing>"
    text = output.render("", [human], HISTORY_TABLE, HISTORY_TITLES)
    header, line = text.splitlines()
    assert header.split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert line.index("1.23MB") == header.index("SIZE") and line.endswith("   c")


@pytest.mark.parametrize("tz,want", [("UTC", "2020-09-13T12:26:40Z"), ("Europe/Paris", "2020-09-13T14:26:40+02:00"),
                                     ("America/New_York", "2020-09-13T08:26:40-04:00")])
def test_rfc3339_local(monkeypatch, tz, want):
    if not os.path.exists(f"/usr/share/zoneinfo/{tz}"):
        pytest.skip("no zoneinfo")
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert rfc3339_local(1600000000) == want
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


@pytest.mark.parametrize("specs,extra,want", [
    (["dangling=true"], None, {"dangling": {"true": True}}),
    ([" Label = a=b ", "label=c"], None, {"label": {"a=b": True, "c": True}}),
    (["", "reference=busy*"], {"reference": ["x"]}, {"reference": {"busy*": True, "x": True}}),
    ([], None, None),
])
def test_filters_param(specs, extra, want):
    assert filters_param(specs, extra) == want


@pytest.mark.parametrize("argv,error", [
    (["-f", "label"], 'invalid argument "label" for "-f, --filter" flag: bad format of filter (expected name=value)'),
    (["--filter=dangling"], 'invalid argument "dangling" for "-f, --filter" flag: bad format of filter'),
])
def test_filter_flag_needs_name_value(argv, error):
    fs = FlagSet("berth images", "").add("-f, --filter", "list")
    with pytest.raises(FlagError, match=error.replace("(", r"\(").replace(")", r"\)")):
        fs.parse(argv)
    assert fs.parse(["-f", "a=b", "--filter", ""])[0].filter == ["a=b", ""]
