"""Route table: ``(method, path pattern) -> handler``, with docker's path parameters.

Patterns use ``{name}`` for one path segment and ``{name:path}`` for a value that may contain
slashes (image names such as ``localhost:5000/ns/app`` in ``/images/{name:path}/json``), as the
Engine API's own routes do.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from berth.api.http import Request

Handler = Callable[[Request], Awaitable[Any]]

_PARAM = re.compile(r"\{(\w+)(?::path)?\}")
VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


class Router:
    """Maps requests to handlers; :meth:`match` returns ``(handler, params)`` or a 404/405 hint."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` (GET, POST, ...; HEAD falls back to GET) and ``pattern``."""
        regex = ""
        pos = 0
        for m in _PARAM.finditer(pattern):
            regex += re.escape(pattern[pos:m.start()])
            regex += f"(?P<{m.group(1)}>.+?)" if m.group(0).endswith(":path}") else f"(?P<{m.group(1)}>[^/]+)"
            pos = m.end()
        regex += re.escape(pattern[pos:])
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def get(self, pattern: str, handler: Handler) -> None:
        self.add("GET", pattern, handler)

    def post(self, pattern: str, handler: Handler) -> None:
        self.add("POST", pattern, handler)

    def put(self, pattern: str, handler: Handler) -> None:
        self.add("PUT", pattern, handler)

    def delete(self, pattern: str, handler: Handler) -> None:
        self.add("DELETE", pattern, handler)

    def head(self, pattern: str, handler: Handler) -> None:
        self.add("HEAD", pattern, handler)

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """Find the handler. Returns ``(handler, params, path_known)``; ``path_known`` tells a
        405 (the path exists for another method) from a 404."""
        path_known = False
        fallback: tuple[Handler, dict[str, str]] | None = None
        for route_method, regex, handler in self._routes:
            m = regex.match(path)
            if not m:
                continue
            path_known = True
            if route_method == method:
                return handler, m.groupdict(), True
            if method == "HEAD" and route_method == "GET" and fallback is None:
                fallback = (handler, m.groupdict())
        if fallback:
            return fallback[0], fallback[1], True
        return None, {}, path_known
