"""berth.filters: docker's shared filter rules (dockerd 20.10 api/types/filters, daemon/prune.go)."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.filters import check_keys, label_matches, labels_match, prune_labels_match

LABELS = {"a": "1", "b": "", "com.example.x": "y=z"}


@pytest.mark.parametrize(("spec", "expected"), [
    ("a", True), ("a=1", True), ("a=2", False), ("b", True), ("b=", True), ("c", False),
    ("com.example.x=y=z", True), ("com.example.x=y", False), ("", False),
])
def test_label_matches(spec, expected):
    assert label_matches(LABELS, spec) is expected


@pytest.mark.parametrize(("specs", "expected"), [
    ([], True), (["a"], True), (["a", "b="], True), (["a", "c"], False), (["a=2"], False),
])
def test_labels_match_is_match_kv_list(specs, expected):
    assert labels_match(LABELS, specs) is expected


@pytest.mark.parametrize(("filters", "pruned"), [
    ({}, True),
    ({"label": ["a"]}, True),
    ({"label": ["a", "c"]}, False),
    ({"label!": ["c"]}, True),
    ({"label!": ["a"]}, False),
    ({"label!": ["a", "c"]}, True),  # matchLabels: kept only when every label! spec holds
    ({"label!": ["a", "b"]}, False),
    ({"label": ["a"], "label!": ["b=1"]}, True),
])
def test_prune_labels_match_is_dockerds_match_labels(filters, pruned):
    assert prune_labels_match(LABELS, filters) is pruned


def test_check_keys():
    check_keys({"label": [], "until": []}, {"label", "until"})
    with pytest.raises(InvalidParameter, match=r"^Invalid filter 'bogus'$"):
        check_keys({"label": [], "bogus": ["1"]}, {"label"})
