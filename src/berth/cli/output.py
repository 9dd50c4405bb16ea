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


class HeaderContext:
    """The object a table template's header row is rendered with (docker's SubHeaderContext):
    ``{{.Field}}`` gives the column title, ``{{.Label "com.example.x"}}`` the label's last dotted
    part with ``-`` and ``_`` as spaces. A field without a title prints ``<no value>``, as docker's
    header map does for a missing key."""

    def __init__(self, titles: dict[str, str]) -> None:
        self._titles = titles

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._titles.get(name, "<no value>")

    def Label(self, name: str) -> str:  # noqa: N802 - the template calls it by docker's name
        return name.split(".")[-1].replace("-", " ").replace("_", " ")


JSON_FORMATS = ("json", "{{json .}}", "{{ json . }}")


def render(fmt: str, items: list[Any], default_table: str, titles: dict[str, str]) -> str:
    """Render ``items`` with a docker ``--format`` value, as docker's formatter.Context does.

    ``""`` or ``"table"`` use ``default_table``; ``"json"`` (or ``{{json .}}``) prints each item's
    ``to_json()`` as Go's json.Marshal does, one per line; ``"table ..."`` prints a header row
    (see :class:`HeaderContext`) then the rows aligned; any other template prints one line per
    item. ``\\t`` and ``\\n`` in the format are tabs and newlines.

    Raises ``TemplateError`` from ``berth.gotemplate`` for a template that does not parse or
    execute (docs: "Format command and log output").
    """
    from berth.gotemplate import Template

    fmt = fmt or default_table
    if fmt.strip() == "table":
        fmt = default_table
    if fmt.strip() in JSON_FORMATS:
        return "".join(go_json(_jsonable(item)) + "\n" for item in items)
    is_table = fmt.startswith("table")
    text = fmt[len("table"):] if is_table else fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    template = Template(text)
    rendered = [template.execute(item) for item in items]
    if not is_table:
        return "".join(r + "\n" for r in rendered)
    header = template.execute(HeaderContext(titles))
    return tabwrite([header, *rendered])


def print_rendered(fmt: str, items: list[Any], default_table: str, titles: dict[str, str]) -> int:
    """Print :func:`render`'s output; for a bad template print docker's ``template parsing error:
    ...`` on stderr instead and return 1 (the command's exit status), else 0."""
    from berth.gotemplate import TemplateError

    try:
        text = render(fmt, items, default_table, titles)
    except TemplateError as exc:
        sys.stderr.write(f"template parsing error: {exc}\n")
        return 1
    sys.stdout.write(text)
    return 0


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, map keys sorted, ``<``, ``>``, ``&``, U+2028 and U+2029
    escaped (what docker's ``--format json`` prints, through each row's MarshalJSON)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


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


def write_file(path: str, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temp file beside it, fsynced, then renamed
    over ``path`` (``--iidfile``), or, ``exclusive``, linked into place so an existing file is not
    replaced (``--cidfile``; raises FileExistsError). The temp file never stays behind."""
    import os
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
