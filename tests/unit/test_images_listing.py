"""``GET /images/json`` filtering and the prune filters (berth.images.listing), with dockerd 20.10's
answers for the same store."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter, NotFound
from berth.images.listing import (
    check_filters,
    list_images,
    parse_until,
    path_match,
    prune_labels_match,
    reference_matches,
)
from berth.images.model import Image


def image(n: int, created: str, tags=(), digests=(), labels=None, parent: str = "") -> Image:
    config = {"created": created, "config": {"Labels": labels}, "rootfs": {"type": "layers", "diff_ids": []}}
    return Image(f"sha256:{n:064x}", config, parent, 10 * n, created, "", float(n), list(tags), list(digests))


BASE = image(1, "2020-01-01T00:00:00Z", ["docker.io/library/busybox:latest"], labels={"a": "1"})
APP = image(2, "2020-01-02T00:00:00Z", ["docker.io/library/app:1", "docker.io/myorg/app:2",
                                        "docker.io/library/app:0"], labels={"a": "2", "b": ""})
MID = image(3, "2020-01-03T00:00:00Z", parent=BASE.id)
TOP = image(4, "2020-01-04T00:00:00Z", ["localhost:5000/x/top:v1"], parent=MID.id)
LOOSE = image(5, "2020-01-05T00:00:00.5Z", digests=["docker.io/library/app@sha256:" + "c" * 64])
DANGLING = image(6, "2020-01-06T00:00:00Z")
STORE = [BASE, APP, MID, TOP, LOOSE, DANGLING]
BY_NAME = {"busybox": BASE, "app:1": APP, "mid": MID, "top": TOP}


def listed(filters: dict[str, list[str]], all_: bool = False) -> list[tuple[int, list[str] | None]]:
    def resolve(name: str) -> Image:
        if name not in BY_NAME:
            raise NotFound(f"No such image: {name}")
        return BY_NAME[name]

    out = list_images(STORE, filters, all_, lambda iid: any(i.parent == iid for i in STORE), resolve,
                      lambda _img: -1)
    return [(int(s["Id"][7:], 16), s["RepoTags"]) for s in out]


NONE = ["<none>:<none>"]


@pytest.mark.parametrize("filters,all_,want", [
    ({}, False, [(6, NONE), (5, None), (4, ["localhost:5000/x/top:v1"]),
                 (2, ["app:0", "app:1", "myorg/app:2"]), (1, ["busybox:latest"])]),
    ({}, True, [(6, NONE), (5, None), (4, ["localhost:5000/x/top:v1"]), (3, NONE),
                (2, ["app:0", "app:1", "myorg/app:2"]), (1, ["busybox:latest"])]),
    ({"dangling": ["true"]}, False, [(6, NONE), (5, None)]),
    ({"dangling": ["false"]}, False, [(5, None), (4, ["localhost:5000/x/top:v1"]),
                                      (2, ["app:0", "app:1", "myorg/app:2"]), (1, ["busybox:latest"])]),
    ({"reference": ["app"]}, False, [(5, None), (2, ["app:0", "app:1"])]),
    ({"reference": ["app:1"]}, False, [(2, ["app:1"])]),
    ({"reference": ["*/app"]}, False, [(2, ["myorg/app:2"])]),
    ({"reference": ["*"]}, False, [(5, None), (2, ["app:0", "app:1"]), (1, ["busybox:latest"])]),
    ({"reference": ["localhost:5000/*/*"]}, False, [(4, ["localhost:5000/x/top:v1"])]),
    ({"label": ["a"]}, False, [(2, ["app:0", "app:1", "myorg/app:2"]), (1, ["busybox:latest"])]),
    ({"label": ["a=1"]}, False, [(1, ["busybox:latest"])]),
    ({"label": ["a", "b"]}, False, [(2, ["app:0", "app:1", "myorg/app:2"])]),
    ({"before": ["app:1"]}, False, [(1, ["busybox:latest"])]),
    ({"since": ["top"]}, False, [(6, NONE), (5, None)]),
    ({"since": ["busybox"], "before": ["top"]}, True, [(3, NONE), (2, ["app:0", "app:1", "myorg/app:2"])]),
    ({"until": ["2020-01-02T00:00:00Z"]}, False, [(2, ["app:0", "app:1", "myorg/app:2"]), (1, ["busybox:latest"])]),
])
def test_list_filters(filters, all_, want):
    assert listed(filters, all_) == want


def test_digest_only_image_keeps_its_digest():
    out = list_images([LOOSE], {}, False, lambda _i: False, lambda n: BASE, lambda _i: -1)
    assert out[0]["RepoDigests"] == ["app@sha256:" + "c" * 64] and out[0]["RepoTags"] is None


@pytest.mark.parametrize("filters,error,kind", [
    ({"bogus": ["1"]}, "Invalid filter 'bogus'", InvalidParameter),
    ({"dangling": ["1"]}, "Invalid filter 'dangling=[1]'", InvalidParameter),
    ({"dangling": ["TRUE"]}, "Invalid filter 'dangling=[TRUE]'", InvalidParameter),
    ({"before": ["nothere"]}, "No such image: nothere", NotFound),
    ({"until": ["abc"]}, 'failed to parse value as time or duration: "abc"', InvalidParameter),
    ({"reference": ["[x"]}, "syntax error in pattern", InvalidParameter),
])
def test_list_filter_errors(filters, error, kind):
    with pytest.raises(kind) as err:
        listed(filters)
    assert str(err.value) == error


@pytest.mark.parametrize("pattern,name,want", [
    ("busy*", "busybox", True), ("*", "myorg/app", False), ("*/*", "myorg/app", True),
    ("b?sybox", "busybox", True), ("[a-c]usybox", "busybox", True), ("[^a-c]usybox", "busybox", False),
    ("a\\*b", "a*b", True), ("a\\*b", "axb", False), ("app", "app:1", False),
])
def test_path_match(pattern, name, want):
    assert path_match(pattern, name) is want


@pytest.mark.parametrize("patterns,ref,want", [
    (["busybox"], "busybox:latest", True), (["busybox:lat*"], "busybox:latest", True),
    (["busybox:1"], "busybox:latest", False), (["localhost:5000/app"], "localhost:5000/app:v1", True),
    (["app"], "app@sha256:" + "c" * 64, True), (["other", "app"], "app:1", True),
])
def test_reference_matches(patterns, ref, want):
    assert reference_matches(patterns, ref) is want


@pytest.mark.parametrize("filters,want", [
    ({}, [1, 2]), ({"label": ["a"]}, [1, 2]), ({"label": ["a=2"]}, [2]), ({"label!": ["b"]}, [1]),
    ({"label!": ["a", "b"]}, [1]), ({"label!": ["a=1", "b"]}, [1, 2]), ({"label": ["a"], "label!": ["a=1"]}, [2]),
])
def test_prune_labels(filters, want):
    assert [i for i, img in ((1, BASE), (2, APP)) if prune_labels_match(img, filters)] == want


def test_check_filters_and_until():
    check_filters({"label": []}, {"label"})
    with pytest.raises(InvalidParameter, match="Invalid filter 'x'"):
        check_filters({"x": []}, {"label"})
    assert parse_until("1600000000.5") == 1600000000_500000000
