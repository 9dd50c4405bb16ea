"""Docker's filter rules that every listing and prune shares (containers, images, volumes,
networks, events): unknown keys refused, ``label`` specs matched, prune's ``label``/``label!``.

Sources: dockerd 20.10 ``api/types/filters`` (``Args.Validate``: ``Invalid filter 'KEY'``;
``Args.MatchKVList``: every ``key`` or ``key=value`` spec holds) and ``daemon/prune.go``
``matchLabels`` (every ``label`` spec holds and not every ``label!`` spec does). Filters arrive
as the API's ``{"key": ["value", ...]}`` map; values of one key are ORed unless a rule says
otherwise, as here for labels.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from berth.errors import InvalidParameter


def check_keys(filters: Mapping[str, list[str]], allowed: Collection[str]) -> None:
    """Raise InvalidParameter ``Invalid filter 'KEY'`` (dockerd's text) for a key not in ``allowed``."""
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"Invalid filter '{key}'")


def label_matches(labels: Mapping[str, str], spec: str) -> bool:
    """Whether ``labels`` has the label of ``spec``: ``key`` (any value) or ``key=value``."""
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def labels_match(labels: Mapping[str, str], specs: Iterable[str]) -> bool:
    """``MatchKVList``: every spec of ``specs`` holds for ``labels`` (true when there are none)."""
    return all(label_matches(labels, spec) for spec in specs)


def prune_labels_match(labels: Mapping[str, str], filters: Mapping[str, list[str]]) -> bool:
    """Whether an object with ``labels`` is pruned under ``filters``' ``label`` and ``label!``
    (dockerd's ``matchLabels``: all ``label`` specs hold, and not all ``label!`` specs do)."""
    if not labels_match(labels, filters.get("label", [])):
        return False
    excluded = filters.get("label!", [])
    return not (excluded and labels_match(labels, excluded))
