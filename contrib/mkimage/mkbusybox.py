#!/usr/bin/env python3
"""Make a busybox root filesystem tar from Debian's ``busybox-static`` package.

Usage: ``mkbusybox.py OUT.tar [--busybox /usr/bin/busybox]``

The tar is deterministic (sorted entries, mtime 0, uid/gid 0) so the same busybox binary
always gives the same layer digest. It holds ``/bin/busybox``, one hard link per applet at the
path ``busybox --list-full`` names, ``/etc/passwd``, ``/etc/group``, ``/etc/hosts`` and friends,
and ``/tmp`` with mode 1777, like the official busybox image. Import it with
``berth import OUT.tar busybox:latest -c 'CMD ["sh"]'``.

Stdlib only: the test-suite and the demo both use it.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "bin:x:2:2:bin:/bin:/bin/false\n"
    "sys:x:3:3:sys:/dev:/bin/false\n"
    "sync:x:4:100:sync:/bin:/bin/sync\n"
    "mail:x:8:8:mail:/var/spool/mail:/bin/false\n"
    "www-data:x:33:33:www-data:/var/www:/bin/false\n"
    "operator:x:37:37:Operator:/var:/bin/false\n"
    "nobody:x:65534:65534:nobody:/home:/bin/false\n"
)
GROUP = (
    "root:x:0:\n"
    "daemon:x:1:\n"
    "bin:x:2:\n"
    "sys:x:3:\n"
    "adm:x:4:\n"
    "tty:x:5:\n"
    "disk:x:6:\n"
    "wheel:x:10:root\n"
    "mail:x:8:\n"
    "www-data:x:33:\n"
    "operator:x:37:\n"
    "staff:x:50:\n"
    "users:x:100:\n"
    "nogroup:x:65534:\n"
)
DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sbin": 0o755, "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755,
    "var/www": 0o755,
}
FILES = {
    "etc/passwd": PASSWD,
    "etc/group": GROUP,
    "etc/shadow": "root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n",
    "etc/hostname": "",
    "etc/hosts": "127.0.0.1\tlocalhost\n",
    "etc/resolv.conf": "",
    "etc/nsswitch.conf": "hosts: files dns\n",
}


def applet_paths(busybox: str) -> list[str]:
    """Return the install paths (``usr/bin/env``...) of every applet of ``busybox``."""
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted({p.strip().lstrip("/") for p in out.splitlines() if p.strip()} - {"bin/busybox"})


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_tar(out: str, busybox: str = "/usr/bin/busybox") -> None:
    """Write the root filesystem tar to ``out`` (atomically: temp file, fsync, rename).

    Raises ``FileNotFoundError`` when ``busybox`` is missing and ``CalledProcessError`` when it
    cannot list its applets.
    """
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = applet_paths(busybox)
    dirs = dict(DIRS)
    for path in applets:
        parent = os.path.dirname(path)
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = os.path.dirname(parent)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for d in sorted(dirs):
                tar.addfile(_info(d + "/", tarfile.DIRTYPE, dirs[d]))
            info = _info("bin/busybox", tarfile.REGTYPE, 0o755)
            info.size = len(binary)
            tar.addfile(info, io.BytesIO(binary))
            for path in applets:
                link = _info(path, tarfile.LNKTYPE, 0o755)
                link.linkname = "bin/busybox"
                tar.addfile(link)
            for name in sorted(FILES):
                data = FILES[name].encode()
                info = _info(name, tarfile.REGTYPE, 0o640 if name == "etc/shadow" else 0o644)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--busybox", default="/usr/bin/busybox")
    args = parser.parse_args(argv)
    try:
        build_tar(args.out, args.busybox)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"mkbusybox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
