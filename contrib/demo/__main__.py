"""``python -m contrib.demo`` (``make demo``): start berthd, make the base images, walk the course.

Run as root from the checkout after ``scripts/setup.sh``. berthd is started in the background
(unless one already answers on the socket) with its log in ``/var/log/berth/berthd.log`` and left
running afterwards; the base images come from ``contrib/mkimage`` (cached, so a second run takes
seconds); the course's files go to ``/var/tmp/berth-demo``. Exit status 0 when every step
succeeded, 1 otherwise, 2 when the set-up itself failed. ``--clean`` (``make clean-demo``) removes
what the demo made and stops berthd.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from contrib.demo import course
from contrib.demo.daemon import DEFAULT_LOG, DaemonPlace, answers, ensure_berthd, stop_hint
from contrib.demo.walk import Walker

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m contrib.demo", description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="/var/lib/berth", help="berthd's data root")
    p.add_argument("--exec-root", default="/run/berth", help="berthd's exec root (its socket lives there)")
    p.add_argument("--bridge-name", default="berth0", help="berthd's default bridge")
    p.add_argument("--log", default=str(DEFAULT_LOG), help="berthd's log file")
    p.add_argument("--workdir", default="/var/tmp/berth-demo", help="where the course's files are written")
    p.add_argument("--sections", default="", help="only these sections, e.g. 1,2 (default: all)")
    p.add_argument("--clean", action="store_true",
                   help="remove what the demo made (its containers, images, volume, network, files) and stop "
                        "berthd; the base images stay")
    return p.parse_args(argv)


def base_images(host: str) -> None:
    """Make and import busybox, debian:bookworm and debian:bookworm-build (cached)."""
    from contrib.mkimage import baseimages

    baseimages.ensure_images(host=host, cli=str(BIN / "berth"), say=lambda line: print(f"  {line}", flush=True))


def clear_leftovers(host: str, workdir: Path) -> None:
    """Remove what an earlier run left: the demo's containers, images, volume, network and files
    (``workdir`` is left empty)."""
    env = {**os.environ, "BERTH_HOST": host}
    for args in course.leftovers():
        subprocess.run([str(BIN / "berth"), *args], env=env, capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)


def clean(place: DaemonPlace, workdir: Path) -> int:
    """``--clean``: remove the demo's objects and files, then stop berthd (SIGTERM, as ``kill``)."""
    if answers(place.sock):
        clear_leftovers(place.host, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    pid = place.pid() if answers(place.sock) else None
    if pid is None:
        print(f"demo: no berthd answers on {place.host}; nothing to stop")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while answers(place.sock) and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = not answers(place.sock)
    print(f"demo: removed the demo's objects and {workdir}; berthd (pid {pid}) "
          f"{'stopped' if stopped else 'did not stop within 30 s'}; its data stays in {place.data_root}")
    return 0 if stopped else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("demo: run as root (berthd needs namespaces, mounts and bridges)", file=sys.stderr)
        return 2
    place = DaemonPlace(Path(args.data_root), Path(args.exec_root), Path(args.exec_root) / "berth.sock",
                        Path(args.log), args.bridge_name)
    if args.clean:
        return clean(place, Path(args.workdir))
    started = time.monotonic()
    try:
        fresh = ensure_berthd(place, str(BIN / "berthd"))
        print(f"demo: berthd {'started' if fresh else 'already running'} on {place.host}; log: {place.log}")
        print("demo: base images (made from Debian packages, cached)", flush=True)
        base_images(place.host)
        clear_leftovers(place.host, Path(args.workdir))
    except Exception as exc:  # noqa: BLE001 - any set-up failure ends the demo with its reason
        print(f"demo: set-up failed: {exc}", file=sys.stderr)
        return 2
    print(f"demo: set-up took {time.monotonic() - started:.0f} s; the course's files go to {args.workdir}")
    from contrib.demo.actions import make_actions

    sections = course.course(make_actions(Path(args.workdir)))
    if args.sections:
        wanted = {int(n) for n in args.sections.split(",")}
        sections = tuple(s for s in sections if s.number in wanted)
    walker = Walker(place.host, Path(args.workdir), str(BIN / "berth"))
    ok = walker.walk(sections)
    print(walker.summary())
    print(f"\ndemo: {'all steps succeeded' if ok else 'some steps FAILED'} in {time.monotonic() - started:.0f} s")
    print(f"demo: berthd keeps running ({place.host}); use it with `export BERTH_HOST={place.host}`;"
          f" stop it with `{stop_hint(place)}` (or `make clean-demo`, which also removes what the demo made);"
          f" its log: {place.log}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
