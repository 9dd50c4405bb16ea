"""Image filters: ``GET /images/json`` listing and the filters ``POST /images/prune`` shares.

Behaviour of dockerd 20.10 (daemon/images/images.go ``Images`` and ``image_prune.go``; docs "docker
images", Filtering): filters ``dangling`` (exactly ``true``/``false``), ``label`` (``k`` or ``k=v``,
all must match), ``before``/``since`` (an image; compared by creation time), ``reference`` (Go
``path.Match`` patterns against ``name:tag`` and ``name``, which also narrows RepoTags and RepoDigests)
and, as newer engines have it, ``until``. Untagged images show as ``<none>:<none>`` and
``<none>@<none>``; untagged images with children are intermediate and shown only with ``all``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from berth.errors import InvalidParameter
from berth.images import views
from berth.images.model import Image
from berth.timeutil import parse_rfc3339_ns, parse_timestamp_arg

LIST_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}
PRUNE_FILTERS = {"dangling", "until", "label", "label!"}


def check_filters(filters: dict[str, list[str]], allowed: set[str]) -> None:
    """Raise InvalidParameter(``Invalid filter 'k'``) for a key outside ``allowed``."""
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"Invalid filter '{key}'")


def invalid_value(key: str, values: list[str]) -> InvalidParameter:
    """dockerd's ``Invalid filter 'dangling=[xyz]'`` (the values printed as a Go slice)."""
    return InvalidParameter(f"Invalid filter '{key}={'[' + ' '.join(values) + ']'}'")


def parse_until(value: str) -> int:
    """An ``until`` value (timestamp, RFC 3339 date or duration ago) in ns since the epoch."""
    try:
        return parse_timestamp_arg(value)
    except ValueError:
        raise InvalidParameter(f'failed to parse value as time or duration: "{value}"') from None


def created_ns(image: Image) -> int:
    """The image's creation time in ns since the epoch (0 when the config has none)."""
    try:
        return parse_rfc3339_ns(image.created)
    except ValueError:
        return 0


def match_kv_list(specs: list[str], labels: dict[str, str]) -> bool:
    """Go filters.MatchKVList: every ``k`` / ``k=v`` of ``specs`` is in ``labels`` (true when none)."""
    for spec in specs:
        key, sep, value = spec.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def prune_labels_match(image: Image, filters: dict[str, list[str]]) -> bool:
    """dockerd's prune ``matchLabels``: all ``label`` specs hold and not all ``label!`` specs do."""
    labels = image.container_config.get("Labels") or {}
    if not match_kv_list(filters.get("label", []), labels):
        return False
    return not (filters.get("label!") and match_kv_list(filters["label!"], labels))


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` stop at ``/``, ``[...]``/``[^...]`` classes, ``\\`` escapes.

    Raises InvalidParameter("syntax error in pattern") for a malformed pattern.
    """
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise InvalidParameter("syntax error in pattern")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] == "^" else i + 1)
            body = pattern[i + 1:end]
            if end < 0 or body in ("", "^"):
                raise InvalidParameter("syntax error in pattern")
            negate = body.startswith("^")
            chars = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + chars.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), name) is not None


def reference_matches(patterns: list[str], familiar_ref: str) -> bool:
    """distribution's ``FamiliarMatch`` for any pattern: against ``busybox:latest`` and ``busybox``."""
    name = familiar_ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return any(path_match(p, familiar_ref) or path_match(p, name) for p in patterns)


def list_images(images: list[Image], filters: dict[str, list[str]], all_: bool,
                has_children: Callable[[str], bool], resolve: Callable[[str], Image],
                containers: Callable[[Image], int]) -> list[dict[str, Any]]:
    """``ImageSummary`` objects for ``GET /images/json``, newest first.

    ``resolve`` finds the image a ``before``/``since`` value names (raising NotFound);
    ``containers`` gives the Containers count (-1 when not asked for). Raises InvalidParameter.
    """
    check_filters(filters, LIST_FILTERS)
    dangling_only = False
    if "dangling" in filters:
        if "true" in filters["dangling"]:
            dangling_only = True
        elif "false" not in filters["dangling"]:
            raise invalid_value("dangling", filters["dangling"])
    before = created_ns(resolve(filters["before"][-1])) if filters.get("before") else None
    since = created_ns(resolve(filters["since"][-1])) if filters.get("since") else None
    until = [parse_until(v) for v in filters.get("until", [])]
    out = []
    for image in sorted(images, key=lambda i: (created_ns(i), i.added), reverse=True):
        created = created_ns(image)
        if (before is not None and created >= before) or (since is not None and created <= since):
            continue
        if any(created > bound for bound in until):
            continue
        if "label" in filters and not match_kv_list(filters["label"], image.container_config.get("Labels") or {}):
            continue
        summary = _summary(image, filters, all_, dangling_only, has_children, containers)
        if summary is not None:
            out.append(summary)
    return out


def _summary(image: Image, filters: dict[str, list[str]], all_: bool, dangling_only: bool,
             has_children: Callable[[str], bool], containers: Callable[[Image], int]) -> dict[str, Any] | None:
    tags = [views.familiar(t) for t in sorted(image.tags)]
    digests = [views.familiar(d) for d in sorted(image.digests)]
    if "reference" in filters:
        tags = [t for t in tags if reference_matches(filters["reference"], t)]
        digests = [d for d in digests if reference_matches(filters["reference"], d)]
    if not tags and not digests:
        if not all_ and has_children(image.id):
            return None
        if ("dangling" in filters and not dangling_only) or "reference" in filters:
            return None
        tags, digests = ["<none>:<none>"], ["<none>@<none>"]
    elif dangling_only and tags:
        return None
    summary = views.summary(image, containers(image))
    summary["RepoTags"] = tags or None
    summary["RepoDigests"] = digests or None
    return summary
