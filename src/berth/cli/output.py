"""Output helpers: docker's tables (Go tabwriter, minwidth 10, padding 3), ``--format`` handling
(``table`` prefix, ``json``, raw templates) and docker's human-readable units.

Sources: docker CLI "Format command and log output" docs; go-units ``HumanSizeWithPrecision``
(decimal units, 3 significant digits) and ``BytesSize`` (binary units).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g(value: float, precision: int) -> str:
    text = f"{value:.{precision}g}"
    if "e" in text:  # Go writes e+06 like C; keep as is
        mantissa, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0").rjust(2, "0")
        text = f"{mantissa}e{sign}{digits}"
    return text


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: ``1.24MB``, ``72.8MB``, ``0B``."""
    i = 0
    while size >= 1000.0 and i < len(DECIMAL_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{_go_g(size, precision)}{DECIMAL_UNITS[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units with 4 significant digits (``1.953MiB``)."""
    i = 0
    while size >= 1024.0 and i < len(BINARY_UNITS) - 1:
        size /= 1024.0
        i += 1
    return f"{_go_g(size, 4)}{BINARY_UNITS[i]}"


def tabwrite(lines: Iterable[str], minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-separated cells like Go's tabwriter as docker configures it.

    Every tab-terminated cell is padded to its column's width (widest cell + ``padding``, at least
    ``minwidth``); the last cell of a line is written as is.
    """
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for index, cell in enumerate(cells[:-1]):
            widths[index] = max(widths.get(index, 0), max(len(cell) + padding, minwidth))
    out = []
    for cells in rows:
        parts = [cell.ljust(widths[index]) for index, cell in enumerate(cells[:-1])]
        parts.append(cells[-1])
        out.append("".join(parts))
    return "\n".join(out) + ("\n" if out else "")


class HeaderContext(dict):
    """Renders a table template's header row: each field name maps to its column title."""

    def __init__(self, titles: dict[str, str]) -> None:
        super().__init__(titles)

    def __missing__(self, key: str) -> str:
        return key.upper()


def render(fmt: str, items: list[Any], default_table: str, titles: dict[str, str]) -> str:
    """Render ``items`` with a docker ``--format`` value.

    ``""`` or ``"table"`` use ``default_table``; ``"json"`` prints one JSON object per line;
    ``"table ..."`` prints a header row then aligned rows; any other template prints one line per item.
    Raises ``TemplateError`` from ``berth.gotemplate`` for a bad template.
    """
    from berth.gotemplate import Template

    fmt = fmt or default_table
    if fmt.strip() == "table":
        fmt = default_table
    if fmt.strip() == "json":
        return "".join(json.dumps(_jsonable(item), separators=(",", ":")) + "\n" for item in items)
    is_table = fmt.startswith("table")
    text = fmt[len("table"):].lstrip() if is_table else fmt
    text = text.replace("\\t", "\t").replace("\\n", "\n")
    template = Template(text)
    rendered = [template.execute(item) for item in items]
    if not is_table:
        return "".join(r + "\n" for r in rendered)
    header = template.execute(HeaderContext(titles))
    return tabwrite([header, *rendered])


def _jsonable(item: Any) -> Any:
    to_json = getattr(item, "to_json", None)
    return to_json() if callable(to_json) else item


def print_json_indented(obj: Any) -> None:
    """``docker inspect`` output: a JSON array indented with 4 spaces."""
    sys.stdout.write(json.dumps(obj, indent=4) + "\n")


def truncate_id(value: str, length: int = 12) -> str:
    """``sha256:abcd...`` -> ``abcd...`` cut to ``length`` hex characters."""
    return value.split(":", 1)[-1][:length]


def ellipsis(text: str, width: int) -> str:
    """docker's ``formatter.Ellipsis``: cut to ``width`` characters ending with ``…``."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"
