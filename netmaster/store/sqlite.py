"""``sqlite:///PATH``: the embedded default, one netmaster on one host, persistent across restarts.

Keys, revisions and a bounded history of events live in one SQLite file (WAL mode), so a restart keeps
every object and allocation and watchers can resume from a revision they saw before the restart.
Leases are process-local: keys attached to a lease are deleted when the store opens, since the
process that kept them alive is gone. ``readonly=True`` (for ``netmaster export`` next to a running
netmaster) opens the file for reading only and touches nothing, not even those keys.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from netmaster.store.base import (
    Delete,
    Event,
    EventType,
    KeyValue,
    Op,
    Put,
    StoreUnavailableError,
    prefix_end,
)
from netmaster.store.local import LocalStore, make_event, next_kv

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value TEXT NOT NULL,
    create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT, prev TEXT, PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compacted', 0);
"""


class SqliteStore(LocalStore):
    def __init__(self, path: str | os.PathLike[str], *, history: int = 10_000, readonly: bool = False) -> None:
        super().__init__(history=history)
        self.path = Path(path)
        try:
            if readonly:
                if not self.path.is_file():
                    raise FileNotFoundError(f"no such file: {self.path}")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                self._revision = self._meta("revision")
                self._compacted = self._meta("compacted")
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._revision = self._meta("revision")
            self._compacted = self._meta("compacted")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"cannot open state database {self.path}: {exc}") from exc
        leased = [r[0] for r in self._db.execute("SELECT key FROM kv WHERE lease != 0")]
        if leased:
            self._txn([], [Delete(k) for k in leased])

    def _meta(self, name: str) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0])

    @staticmethod
    def _kv(row: tuple) -> KeyValue:
        return KeyValue(row[0], row[1], row[2], row[3], row[4], row[5])

    def _get(self, key: str) -> KeyValue | None:
        row = self._db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return self._kv(row) if row else None

    def _range(self, prefix: str) -> list[KeyValue]:
        rows = self._db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix_end(prefix)),
        )
        return [self._kv(r) for r in rows]

    def _current_revision(self) -> int:
        return self._revision

    def _commit(self, revision: int, writes: list[tuple[Op, KeyValue | None]]) -> list[Event]:
        events = [make_event(op, previous, revision) for op, previous in writes]
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for op, previous in writes:
                if isinstance(op, Put):
                    kv = next_kv(op, previous, revision)
                    db.execute(
                        "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?)",
                        (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease),
                    )
                else:
                    db.execute("DELETE FROM kv WHERE key = ?", (op.key,))
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                [(e.revision, i, e.type.value, e.key, e.value, e.prev_value) for i, e in enumerate(events)],
            )
            db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
            if revision % 1000 == 0 and revision - self._history > self._compacted:
                self._compacted = revision - self._history
                db.execute("DELETE FROM events WHERE rev <= ?", (self._compacted,))
                db.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (self._compacted,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreUnavailableError(f"state database {self.path}: {exc}") from exc
        self._revision = revision
        return events

    def _events_after(self, prefix: str, revision: int) -> list[Event]:
        if revision >= self._revision:
            return []
        rows = self._db.execute(
            "SELECT type, key, rev, value, prev FROM events WHERE rev > ? AND key >= ? AND key < ? ORDER BY rev, seq",
            (revision, prefix, prefix_end(prefix)),
        )
        return [Event(EventType(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def _oldest_revision(self) -> int:
        return self._compacted + 1 if self._compacted else 0

    def _keys_with_lease(self, lease: int) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT key FROM kv WHERE lease = ?", (lease,))]

    async def close(self) -> None:
        await super().close()
        self._db.close()
