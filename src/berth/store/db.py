"""SQLite metadata store: one database file per data root, WAL mode, one schema with migrations.

DESIGN decision 1: metadata lives in SQLite (stdlib ``sqlite3``), blobs live as files. Every
multi-step change runs in one transaction (:meth:`Database.transaction`), so a crash leaves
either the old or the new state.

The connection is shared by the daemon's threads behind a lock; statements are short (no
blob data passes through SQLite), so the event loop is never held for long.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Each entry upgrades the schema by one version. Never edit a released entry: append one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE layers (
        chain_id   TEXT PRIMARY KEY,   -- sha256:..., also the snapshot key (hex part)
        diff_id    TEXT NOT NULL,      -- sha256 of the uncompressed layer tar
        parent     TEXT,               -- chain id of the layer below, NULL for a base layer
        size       INTEGER NOT NULL,   -- unpacked size in bytes
        blob       TEXT NOT NULL       -- digest of the stored layer tar in the content store
    );
    CREATE TABLE images (
        id         TEXT PRIMARY KEY,   -- sha256:<hex of the config blob>
        parent     TEXT,               -- local parent image id (builds, commits), '' when none
        created    TEXT NOT NULL,      -- config "created", RFC 3339
        size       INTEGER NOT NULL,   -- sum of the layers' unpacked sizes
        last_tag   TEXT,               -- Metadata.LastTagTime
        added      REAL NOT NULL       -- time the image entered this store (for ordering)
    );
    CREATE INDEX images_parent ON images(parent);
    CREATE TABLE tags (
        ref        TEXT PRIMARY KEY,   -- normalised reference: docker.io/library/busybox:latest
        image_id   TEXT NOT NULL REFERENCES images(id)
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE digests (
        ref        TEXT PRIMARY KEY,   -- name@sha256:... (RepoDigests)
        image_id   TEXT NOT NULL REFERENCES images(id)
    );
    CREATE TABLE containers (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,  -- without the leading '/'
        record     TEXT NOT NULL          -- JSON of the container record
    );
    CREATE TABLE networks (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        record     TEXT NOT NULL
    );
    CREATE TABLE volumes (
        name       TEXT PRIMARY KEY,
        record     TEXT NOT NULL
    );
    CREATE TABLE build_cache (
        parent     TEXT NOT NULL,      -- image id the step ran on ('' for scratch)
        key        TEXT NOT NULL,      -- the step's cache key (instruction + content checksums)
        image_id   TEXT NOT NULL,
        PRIMARY KEY (parent, key)
    );
    """,
]


class Database:
    """The metadata database at ``path`` (created with the current schema when missing).

    Raises ``sqlite3.DatabaseError`` for a corrupt file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for index in range(version, len(MIGRATIONS)):
            with self.transaction():
                for statement in _split_sql(MIGRATIONS[index]):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version={index + 1}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one ``BEGIN IMMEDIATE`` transaction; roll back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        """Run a read query and return its first row or ``None``."""
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one write statement in its own transaction; returns the number of rows changed."""
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()

    # JSON record tables (containers, networks, volumes) share these helpers.
    def put_record(self, table: str, key: str, record: dict[str, Any], **columns: str) -> None:
        """Insert or replace a JSON record row in ``table`` keyed by its first column."""
        names = ["record", *columns]
        values = [json.dumps(record, separators=(",", ":")), *columns.values()]
        key_col = _KEY_COLUMNS[table]
        sql = (f"INSERT OR REPLACE INTO {table} ({key_col}, {', '.join(names)}) "
               f"VALUES (?, {', '.join('?' for _ in names)})")
        self.execute(sql, (key, *values))

    def get_records(self, table: str) -> list[dict[str, Any]]:
        """Every JSON record of ``table``."""
        return [json.loads(row["record"]) for row in self.query(f"SELECT record FROM {table}")]

    def delete_record(self, table: str, key: str) -> None:
        """Delete the row of ``table`` whose key column equals ``key`` (no error when absent)."""
        self.execute(f"DELETE FROM {table} WHERE {_KEY_COLUMNS[table]} = ?", (key,))


_KEY_COLUMNS = {"containers": "id", "networks": "id", "volumes": "name"}


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (no ';' inside our statements' literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
