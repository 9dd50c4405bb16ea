"""Base images from Debian packages (no Docker Hub here): ``busybox:latest`` from busybox-static,
``debian:bookworm`` with ``debootstrap --variant=minbase`` from the host's own apt mirror, and
``debian:bookworm-build`` with build-essential; plus the .deb files a build context needs.

Each module is a stdlib-only script (``python3 contrib/mkimage/<name>.py --help``) and importable
as ``contrib.mkimage.<name>`` from the repository root: ``baseimages`` (make and import all),
``mkdebian`` (debootstrap a cached root filesystem tar), ``mkbusybox``, ``debs`` (fetch .debs with
their dependencies), ``aptsources`` (read the host's mirror), ``rootfs`` (tars and the cache).
"""
