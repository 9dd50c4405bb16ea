"""``system df -v``: the four detailed tables docker's CLI prints from ``GET /system/df``.

Source: docker CLI reference "docker system df" (``--verbose``) and the Engine API's
``SystemDataUsageResponse``; columns and section titles as docker 20.10 prints them.
"""

from __future__ import annotations

from typing import Any

from berth.cli import output
from berth.cli.commands.images import ImageRow, since
from berth.cli.commands.ps import ContainerRow

IMAGE_TITLES = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS"
CONTAINER_TITLES = "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES"
VOLUME_TITLES = "VOLUME NAME\tLINKS\tSIZE"
CACHE_TITLES = "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"


def verbose_report(data: dict[str, Any]) -> str:
    """The whole ``system df -v`` text for a ``/system/df`` response ``data``.

    Images show their first tag only (``<none>`` for untagged or dangling ones); containers show
    their writable layer size without the virtual size; a volume whose usage the daemon did not
    compute shows ``N/A``.
    """
    parts = ["Images space usage:\n\n", output.tabwrite([IMAGE_TITLES, *map(_image_line, data.get("Images") or [])]),
             "\nContainers space usage:\n\n",
             output.tabwrite([CONTAINER_TITLES, *map(_container_line, data.get("Containers") or [])]),
             "\nLocal Volumes space usage:\n\n",
             output.tabwrite([VOLUME_TITLES, *map(_volume_line, data.get("Volumes") or [])]),
             f"\nBuild cache usage: {output.human_size(data.get('BuilderSize') or 0, 4)}\n\n",
             output.tabwrite([CACHE_TITLES, *map(_cache_line, data.get("BuildCache") or [])])]
    return "".join(parts)


def _image_line(summary: dict[str, Any]) -> str:
    repo = tag = "<none>"
    tags = [t for t in summary.get("RepoTags") or [] if t != "<none>:<none>"]
    if tags:
        name, _, last = tags[0].rpartition(":")
        if "/" not in last:  # a tag, not a registry port
            repo, tag = name, last
    row = ImageRow(summary, repo, tag, "", trunc=True)
    return "\t".join([row.Repository, row.Tag, row.ID, row.CreatedSince, row.Size, row.SharedSize,
                      row.UniqueSize, row.Containers])


def _container_line(summary: dict[str, Any]) -> str:
    row = ContainerRow({**summary, "SizeRootFs": 0}, trunc=True)
    return "\t".join([row.ID, row.Image, row.Command, row.LocalVolumes, row.Size, row.RunningFor, row.Status,
                      row.Names])


def _volume_line(volume: dict[str, Any]) -> str:
    usage = volume.get("UsageData")
    if not usage:
        return f"{volume.get('Name', '')}\tN/A\tN/A"
    size = usage.get("Size", -1)
    shown = "N/A" if size < 0 else output.human_size(size, 4)
    return f"{volume.get('Name', '')}\t{usage.get('RefCount', 0)}\t{shown}"


def _cache_line(record: dict[str, Any]) -> str:
    last_used = record.get("LastUsedAt")
    return "\t".join([output.truncate_id(record.get("ID", "")), record.get("Type", ""),
                      output.human_size(record.get("Size", 0), 4), _since_text(record.get("CreatedAt")),
                      _since_text(last_used) if last_used else "", str(record.get("UsageCount", 0)),
                      "true" if record.get("Shared") else "false"])


def _since_text(stamp: Any) -> str:
    """``CreatedAt``/``LastUsedAt`` are RFC 3339 strings in the API; '' when missing or unreadable."""
    from datetime import datetime
    try:
        return since(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return ""
