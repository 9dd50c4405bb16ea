"""Render bench rows as one aligned text table or a Markdown table (for BENCHMARKS.md). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from bench.common import Row

PEERS = ("docker", "podman")


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(row: Row, peer: str) -> str:
    ratio = row.ratio(peer)
    return "-" if ratio is None else f"{ratio:.2f}x"


def cells(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells: topic, case, unit, berth, then per peer its median and berth/peer ratio.

    Peers with no value in any row are left out, so a machine without podman gets no podman columns.
    """
    seen = {k for r in rows for k, v in r.medians.items() if v is not None and k != "berth"}
    peers = [p for p in PEERS if p in seen] + sorted(seen - set(PEERS))
    header = ["topic", "case", "unit", "berth"]
    for peer in peers:
        header += [peer, f"berth/{peer}"]
    header.append("runs")
    body = []
    for row in rows:
        line = [row.topic, row.case, row.unit, _value(row.medians.get("berth"), row.unit)]
        for peer in peers:
            line += [_value(row.medians.get(peer), row.unit), _ratio(row, peer)]
        line.append(str(row.runs))
        body.append(line)
    return header, body


def render(rows: Sequence[Row]) -> str:
    """Plain text table, columns separated by at least two spaces, numbers right-aligned."""
    header, body = cells(rows)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = [i >= 3 for i in range(len(header))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in body)])


def markdown(rows: Sequence[Row]) -> str:
    """GitHub Markdown table of the same cells."""
    header, body = cells(rows)
    align = ["---" if i < 3 else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def notes(rows: Sequence[Row]) -> list[str]:
    """The rows' notes, one ``topic/case: note`` line each (rows without a note are skipped)."""
    return [f"{r.topic}/{r.case}: {r.note}" for r in rows if r.note]
