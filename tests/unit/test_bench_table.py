"""The bench's ratio table (bench/table.py) and row files (bench/common.py): pure, no engines."""

from __future__ import annotations

import json

from bench.common import Row, emit, load_rows
from bench.table import cells, markdown, notes, render

ROWS = [
    Row("cli_startup", "berth --version", "ms", {"berth": 30.0, "docker": 15.0}, 20),
    Row("images", "layer unpack", "MB/s", {"berth": 50.0, "tar -x": 100.0}, 3, "41 MB tar"),
    Row("build", "cached", "s", {"berth": 1.5, "docker": None, "podman": 3.0}, 5),
]


def test_ratio_is_berth_over_peer():
    assert ROWS[0].ratio("docker") == 2.0
    assert ROWS[1].ratio("tar -x") == 0.5
    assert ROWS[2].ratio("docker") is None and ROWS[2].ratio("podman") == 0.5
    assert (ROWS[0].higher_is_better, ROWS[1].higher_is_better) == (False, True)


def test_columns_only_for_peers_that_reported():
    header, body = cells(ROWS)
    assert header == ["topic", "case", "unit", "berth", "docker", "berth/docker", "podman", "berth/podman",
                      "tar -x", "berth/tar -x", "runs"]
    assert body[0] == ["cli_startup", "berth --version", "ms", "30.0", "15.0", "2.00x", "-", "-", "-", "-", "20"]
    assert body[1][3] == "50.0" and body[1][8:10] == ["100", "0.50x"]
    assert body[2][3:8] == ["1.50", "-", "-", "3.00", "0.50x"]
    header, _ = cells(ROWS[:1])
    assert header == ["topic", "case", "unit", "berth", "docker", "berth/docker", "runs"]


def test_text_and_markdown_tables():
    text = render(ROWS).splitlines()
    assert len(text) == 4 and text[0].startswith("topic ") and text[1].split()[-1] == "20"
    assert len({len(line) for line in text[:2]}) == 1  # aligned columns
    md = markdown(ROWS).splitlines()
    assert md[0].startswith("| topic | case |") and md[1].startswith("| --- | --- | --- | ---: |")
    assert notes(ROWS) == ["images/layer unpack: 41 MB tar"]


def test_emit_writes_rows_for_the_runner(tmp_path, monkeypatch):
    target = tmp_path / "rows.json"
    monkeypatch.setenv("BENCH_JSON", str(target))
    printed: list[str] = []
    emit(ROWS, printed.append)
    assert printed[0] == render(ROWS) and printed[1:] == ["  images/layer unpack: 41 MB tar"]
    assert load_rows(target) == ROWS
    assert json.loads(target.read_text())[0]["medians"] == {"berth": 30.0, "docker": 15.0}
