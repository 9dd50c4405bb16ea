"""Content-addressed blob store: ``content/blobs/sha256/<hex>``, immutable, written atomically.

Blobs are layer tars, image configs and manifests (OCI image spec, "Descriptors": a digest is
``algorithm:hex``). A blob is written to a temp file in the same directory, hashed while written,
fsynced, then renamed into place, so a reader never sees a partial blob and a crash leaves only a
temp file that :meth:`ContentStore.cleanup` removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidParameter, NotFound

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>``; raise InvalidParameter otherwise."""
    if not _DIGEST_RE.match(digest):
        raise InvalidParameter(f"invalid digest: {digest!r}")
    return digest


def sha256_bytes(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fsync_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


class BlobWriter:
    """A blob being written: ``write()`` chunks, then ``commit()`` or ``abort()``.

    ``commit(expected=None)`` returns ``(digest, size)``; with ``expected`` a digest mismatch
    raises InvalidParameter and nothing is stored.
    """

    def __init__(self, store: ContentStore) -> None:
        self._store = store
        fd, self._tmp = tempfile.mkstemp(dir=store.dir, prefix=".tmp-")
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> tuple[str, int]:
        digest = self.digest
        if expected is not None and expected != digest:
            self.abort()
            raise InvalidParameter(f"digest mismatch: expected {expected}, got {digest}")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self._store.path(digest))
        return digest, self.size

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        _unlink(self._tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._file.closed:
            self.abort()


class ContentStore:
    """Blobs under ``root/blobs/sha256``. Thread-safe: every write goes through a private temp file."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        """Filesystem path of ``digest`` (which need not exist)."""
        return self.dir / check_digest(digest).split(":", 1)[1]

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def read(self, digest: str) -> bytes:
        """The whole blob (for small blobs: configs, manifests). Raises NotFound."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        """A binary file object reading the blob. Raises NotFound."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its digest (idempotent)."""
        digest = sha256_bytes(data)
        target = self.path(digest)
        if not target.exists():
            fsync_write(target, data)
        return digest

    def writer(self) -> BlobWriter:
        """Start a streamed write (see :class:`BlobWriter`)."""
        return BlobWriter(self)

    def copy_from(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        """Store everything read from ``stream``; returns ``(digest, size)``."""
        with self.writer() as w:
            while chunk := stream.read(CHUNK):
                w.write(chunk)
            return w.commit(expected)

    def delete(self, digest: str) -> None:
        """Remove a blob (no error when absent)."""
        _unlink(str(self.path(digest)))

    def digests(self) -> Iterable[str]:
        """Every stored digest."""
        for name in os.listdir(self.dir):
            if not name.startswith("."):
                yield "sha256:" + name

    def cleanup(self) -> None:
        """Remove temp files a crash left behind (called at daemon start)."""
        for name in os.listdir(self.dir):
            if name.startswith(".tmp-"):
                _unlink(str(self.dir / name))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
