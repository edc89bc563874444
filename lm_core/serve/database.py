"""The run store's SQLite file: opened safely, shared by threads, never fatal for training.

A locked database is retried; a write that still fails (disk full, folder
made read-only) is reported in `problem` instead of raised, and nothing
already written is touched. A corrupt or foreign file is moved aside to
`<name>.corrupt-<timestamp>` and a fresh one is started, with a `notice`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

APP_ID = "rnn-lyrics-lab-runs"
SCHEMA_VERSION = 1
LOCK_RETRIES = 5  # attempts on "database is locked" after the busy timeout
BUSY_TIMEOUT_MS = 2000

T = TypeVar("T")


class Database:
    """One SQLite file with `schema`, stamped as this app's; reads and writes from any thread."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.schema = schema
        self.notice = ""  # something the app should say once (a file moved aside)
        self.problem = ""  # why the last write failed ("" while writes work)
        self._lock = threading.Lock()
        self.conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect_and_check()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(aside) + suffix))
            self.notice = (
                f"The run database was unreadable or not this app's ({exc}); it was moved aside to "
                f"{aside.name} and a new, empty one was started."
            )
            return self._connect_and_check()

    def _connect_and_check(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise sqlite3.DatabaseError("a SQLite file of another program")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(self.schema)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))],
                )
                conn.commit()
            elif meta.get("app") != APP_ID:
                raise sqlite3.DatabaseError("a database of another program")
            elif int(meta.get("schema_version", "0")) > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema {meta.get('schema_version')} is newer than this app")
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def write(self, action: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run `action` in a transaction; retry a locked database; on a lasting failure say so in `problem`."""
        for attempt in range(LOCK_RETRIES):
            try:
                with self._lock, self.conn:
                    result = action(self.conn)
                self.problem = ""
                return result
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self.problem = str(exc)
                return None
            except sqlite3.DatabaseError as exc:
                self.problem = str(exc)
                return None
        self.problem = "the run database stayed locked by another process"
        return None

    def read(self, query: str, args: tuple = ()) -> list[tuple]:
        """Rows of `query`; none when the database cannot be read just now (a read never raises either)."""
        for attempt in range(LOCK_RETRIES):
            try:
                with self._lock:
                    return self.conn.execute(query, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                return []
            except sqlite3.DatabaseError:
                return []
        return []
