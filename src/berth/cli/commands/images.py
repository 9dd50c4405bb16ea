"""Image commands: images/image ls, image inspect, tag, rmi, image prune, history (docs: docker
CLI reference for each command); images in and out are :mod:`.image_transfer`."""

from __future__ import annotations

import sys
import time
from typing import Any

from berth.cli import output
from berth.cli.flags import FlagSet
from berth.client.api import APIError, path_quote

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGESTS = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGE_TITLES = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
                "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_NON_HUMAN = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TITLES = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                  "Size": "SIZE", "Comment": "COMMENT"}


def go_time(ts: float) -> str:
    """Go's ``time.Time.String()`` in local time: ``2006-01-02 15:04:05 -0700 MST``."""
    lt = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (time.strftime("%Z", lt) or "UTC")


def rfc3339_local(ts: float) -> str:
    """Go's ``time.Unix(ts, 0).Format(time.RFC3339)`` in local time: ``2006-01-02T15:04:05Z`` or
    ``...+01:00``."""
    lt = time.localtime(ts)
    offset = lt.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        zone = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + zone


def since(ts: float) -> str:
    from berth.timeutil import human_duration
    return human_duration(time.time() - ts) + " ago"


def filters_param(specs: list[str], extra: dict[str, list[str]] | None = None) -> dict[str, dict[str, bool]] | None:
    """``--filter k=v`` flags as the Engine API's filters JSON (``{"k": {"v": true}}``).

    The flag parser already refused values without ``=`` (see :mod:`berth.cli.flags`); APIError
    is the fallback for callers that build specs themselves."""
    out: dict[str, dict[str, bool]] = {}
    for spec in specs:
        if not spec:
            continue  # docker's FilterOpt ignores an empty value
        key, sep, value = spec.partition("=")
        if not sep:
            raise APIError(400, "bad format of filter (expected name=value)")
        # docker/cli opts.FilterOpt: names are trimmed and lower-cased, values trimmed
        out.setdefault(key.strip().lower(), {})[value.strip()] = True
    for key, values in (extra or {}).items():
        for value in values:
            out.setdefault(key, {})[value] = True
    return out or None


class ImageRow:
    """One row of ``images`` (docker's imageContext fields)."""

    def __init__(self, summary: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool) -> None:
        self._s = summary
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        self._trunc = trunc

    @property
    def ID(self) -> str:
        return output.truncate_id(self._s["Id"]) if self._trunc else self._s["Id"]

    @property
    def CreatedSince(self) -> str:
        return since(self._s["Created"])

    @property
    def CreatedAt(self) -> str:
        return go_time(self._s["Created"])

    @property
    def Size(self) -> str:
        return output.human_size(self._s.get("Size", 0))

    # docker formats these with units.HumanSize (4 significant digits), Size with 3
    @property
    def VirtualSize(self) -> str:
        return output.human_size(self._s.get("VirtualSize", self._s.get("Size", 0)), 4)

    @property
    def SharedSize(self) -> str:
        shared = self._s.get("SharedSize", -1)
        return "N/A" if shared < 0 else output.human_size(shared, 4)

    @property
    def UniqueSize(self) -> str:
        shared = self._s.get("SharedSize", -1)
        return "N/A" if shared < 0 else output.human_size(self._s.get("Size", 0) - shared, 4)

    @property
    def Containers(self) -> str:
        count = self._s.get("Containers", -1)
        return "N/A" if count < 0 else str(count)

    def to_json(self) -> dict[str, str]:
        return {"Containers": self.Containers, "CreatedAt": self.CreatedAt, "CreatedSince": self.CreatedSince,
                "Digest": self.Digest, "ID": self.ID, "Repository": self.Repository,
                "SharedSize": self.SharedSize, "Size": self.Size, "Tag": self.Tag,
                "UniqueSize": self.UniqueSize, "VirtualSize": self.VirtualSize}


def image_rows(summaries: list[dict[str, Any]], trunc: bool, digests: bool) -> list[ImageRow]:
    """Expand summaries into rows as docker's image formatter does: one row per repository tag
    (times each digest of that repository with ``--digests``), then rows for repositories that
    only have digests, and one ``<none>`` row for an image with neither."""
    rows = []
    for s in summaries:
        tags_by_repo = _by_repo(s.get("RepoTags"), ":")
        digests_by_repo = _by_repo(s.get("RepoDigests"), "@")
        if not tags_by_repo and not digests_by_repo:
            rows.append(ImageRow(s, "<none>", "<none>", "<none>", trunc))
            continue
        for repo, tags in tags_by_repo.items():
            repo_digests = digests_by_repo.pop(repo, []) if digests else []
            digests_by_repo.pop(repo, None)
            for tag in tags:
                rows.extend(ImageRow(s, repo, tag, d, trunc) for d in repo_digests or ["<none>"])
        for repo, repo_digests in digests_by_repo.items():
            if digests:
                rows.extend(ImageRow(s, repo, "<none>", d, trunc) for d in repo_digests)
            else:
                rows.append(ImageRow(s, repo, "<none>", "", trunc))
    return rows


def _by_repo(refs: list[str] | None, sep: str) -> dict[str, list[str]]:
    """``["busybox:1", "busybox:2"]`` -> ``{"busybox": ["1", "2"]}`` (``<none>`` entries skipped)."""
    out: dict[str, list[str]] = {}
    for ref in refs or []:
        if ref.startswith("<none>"):
            continue
        repo, _, value = ref.rpartition(sep) if sep == ":" else ref.partition(sep)
        out.setdefault(repo, []).append(value)
    return out


def ls(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] [REPOSITORY[:TAG]]", "List images", max_args=1)
    fs.add("-a, --all", help="Show all images (default hides intermediate images)")
    fs.add("--digests", help="Show digests")
    fs.add("-f, --filter", "list", help="Filter output based on conditions provided", metavar="filter")
    fs.add("--format", "string", help="Pretty-print images using a Go template", metavar="string")
    fs.add("--no-trunc", help="Don't truncate output")
    fs.add("-q, --quiet", help="Only show image IDs")
    args, rest = fs.parse_or_exit(argv)
    extra = {"reference": [rest[0]]} if rest else None
    summaries = ctx.client.get("/images/json", {"all": args.all or None,
                                                "filters": filters_param(args.filter, extra)})
    rows = image_rows(summaries, not args.no_trunc, args.digests)
    default = IMAGES_TABLE_DIGESTS if args.digests else IMAGES_TABLE
    if args.quiet:  # an explicit --format still wins, as in docker
        default = "{{.ID}}"
    return output.print_rendered(args.format, rows, default, IMAGE_TITLES)


def inspect_image(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images", 1)
    fs.add("-f, --format", "string", help="Format the output using the given Go template")
    args, names = fs.parse_or_exit(argv)
    from berth.cli.commands.inspect import inspect_objects
    return inspect_objects(ctx, names, args.format, kinds=("image",))


def tag(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                 "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", 2, 2)
    _, (source, target) = fs.parse_or_exit(argv)
    from berth.errors import InvalidParameter
    from berth.images import reference as refs
    try:
        ref = refs.parse_normalized_named(target)
    except InvalidParameter as exc:
        sys.stderr.write(f'Error parsing reference: "{target}" is not a valid repository/tag: {exc}\n')
        return 1
    if ref.digest:
        sys.stderr.write("refusing to create a tag with a digest reference\n")
        return 1
    ctx.client.request("POST", f"/images/{path_quote(source)}/tag",
                       {"repo": ref.familiar_name if ref.domain == "docker.io" else ref.name, "tag": ref.tag or "latest"})
    return 0


def rmi(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", 1)
    fs.add("-f, --force", help="Force removal of the image")
    fs.add("--no-prune", help="Do not delete untagged parents")
    args, names = fs.parse_or_exit(argv)
    status = 0
    for name in names:
        try:
            records = ctx.client.delete(f"/images/{path_quote(name)}",
                                        {"force": args.force or None, "noprune": args.no_prune or None})
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            status = 1
            continue
        for record in records or []:
            for key in ("Untagged", "Deleted"):
                if key in record and record[key]:
                    print(f"{key}: {record[key]}")
    return status


def target_reference(text: str) -> Any | None:
    """The parsed ``REPOSITORY[:TAG]`` argument of import/commit (``berth.images.reference``),
    or None after printing the parse error as docker's CLI does (the caller exits 1)."""
    from berth.errors import InvalidParameter
    from berth.images import reference as refs
    try:
        return refs.parse_normalized_named(text)
    except InvalidParameter as exc:
        sys.stderr.write(f"{exc}\n")
        return None


def confirm(message: str) -> bool:
    """docker's prompt: ``Are you sure you want to continue? [y/N]``."""
    sys.stdout.write(f"{message}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def prune(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS]", "Remove unused images", 0, 0)
    fs.add("-a, --all", help="Remove all unused images, not just dangling ones")
    fs.add("--filter", "list", help='Provide filter values (e.g. "until=<timestamp>")', metavar="filter")
    fs.add("-f, --force", help="Do not prompt for confirmation")
    args, _ = fs.parse_or_exit(argv)
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if args.all else "WARNING! This will remove all dangling images.")
    if not args.force and not confirm(warning):
        return 0
    extra = {"dangling": ["false"]} if args.all else {"dangling": ["true"]}
    report = ctx.client.post("/images/prune", {"filters": filters_param(args.filter, extra)}) or {}
    sys.stdout.write(deleted_images(report))
    print(f"Total reclaimed space: {output.human_size(report.get('SpaceReclaimed', 0), 4)}")
    return 0


def deleted_images(report: dict[str, Any]) -> str:
    """The ``Deleted Images:`` section of a ``POST /images/prune`` answer (``untagged: REF`` and
    ``deleted: sha256:...`` lines in the daemon's order, then a blank line); ``""`` when none."""
    deleted = report.get("ImagesDeleted") or []
    if not deleted:
        return ""
    lines = [f"{key.lower()}: {record[key]}\n" for record in deleted for key in ("Untagged", "Deleted")
             if record.get(key)]
    return "Deleted Images:\n" + "".join(lines) + "\n"


class HistoryRow:
    """One row of ``history`` (docker's historyContext fields); ``human`` is ``-H``."""

    def __init__(self, item: dict[str, Any], trunc: bool, human: bool) -> None:
        self._i, self._trunc, self._human = item, trunc, human

    @property
    def ID(self) -> str:
        iid = self._i["Id"]
        return output.truncate_id(iid) if self._trunc and iid != "<missing>" else iid

    @property
    def CreatedSince(self) -> str:
        if not self._human:
            return self.CreatedAt
        return since(self._i.get("Created", 0))

    @property
    def CreatedAt(self) -> str:
        return rfc3339_local(self._i.get("Created", 0))

    @property
    def CreatedBy(self) -> str:
        text = self._i.get("CreatedBy", "").replace("\t", " ")
        return output.ellipsis(text, 45) if self._trunc else text

    @property
    def Size(self) -> str:
        return output.human_size(self._i.get("Size", 0)) if self._human else str(self._i.get("Size", 0))

    @property
    def Comment(self) -> str:
        return self._i.get("Comment", "")

    def to_json(self) -> dict[str, str]:
        return {"Comment": self.Comment, "CreatedAt": self.CreatedAt, "CreatedBy": self.CreatedBy,
                "CreatedSince": self.CreatedSince, "ID": self.ID, "Size": self.Size}


def history(ctx: Any, argv: list[str], prog: str) -> int:
    fs = FlagSet(prog, "[OPTIONS] IMAGE", "Show the history of an image", 1, 1)
    fs.add("--format", "string", help="Pretty-print images using a Go template")
    fs.add("-H, --human", default=True, help="Print sizes and dates in human readable format (default true)")
    fs.add("--no-trunc", help="Don't truncate output")
    fs.add("-q, --quiet", help="Only show image IDs")
    args, (name,) = fs.parse_or_exit(argv)
    items = ctx.client.get(f"/images/{path_quote(name)}/history")
    rows = [HistoryRow(item, not args.no_trunc, args.human) for item in items]
    default = HISTORY_TABLE if args.human else HISTORY_TABLE_NON_HUMAN
    if args.quiet:  # an explicit --format still wins, as in docker
        default = "{{.ID}}"
    return output.print_rendered(args.format, rows, default, HISTORY_TITLES)
