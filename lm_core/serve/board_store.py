"""Where boards live: `boards.sqlite` in the data folder, beside the run store.

What it keeps: each board's definition (so its link works after a restart), the seats (which value each
visitor was given, so the next visitor gets the value fewest have) and the board runs (which job trained
which value, by whom, with which seed, and what the run showed once it ended: a board outlives the run
store's per-owner quota and the job itself). The caps on boards are checked here, inside the transaction
that adds one, so two servers sharing the folder (Ray) cannot both take the last place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards import BOARD_ID, BoardError, BoardSpec
from ..limits import (
    BOARD_IDLE_DAYS,
    MAX_BOARD_SEATS,
    MAX_BOARDS_ALONE_TOTAL,
    MAX_BOARDS_PER_CLASS,
    MAX_BOARDS_PER_OWNER,
)

DB_NAME = "boards.sqlite"
APP_ID = "rnn-lyrics-lab-boards"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 2000
LOCK_RETRIES = 5


@dataclass(frozen=True)
class BoardRunRecord:
    """A job trained for a board: whose, which value, which seed; `result` once the board saw it end.

    No name is kept: a page names a run's owner when it draws the board, for that viewer (a student's name
    only to those allowed to see it, and not at all once the student is removed from their class).
    """

    job_id: str
    board_id: str
    owner: str
    value_index: int
    seed: int
    created: float
    result: dict[str, Any] | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS boards (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, class_id TEXT, spec TEXT NOT NULL,
    created REAL NOT NULL, opened REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS boards_owner ON boards (owner, created);
CREATE INDEX IF NOT EXISTS boards_class ON boards (class_id, created);
CREATE TABLE IF NOT EXISTS seats (
    board_id TEXT NOT NULL, owner TEXT NOT NULL, value_index INTEGER NOT NULL, joined REAL NOT NULL,
    PRIMARY KEY (board_id, owner)
);
CREATE TABLE IF NOT EXISTS board_runs (
    job_id TEXT PRIMARY KEY, board_id TEXT NOT NULL, owner TEXT NOT NULL, value_index INTEGER NOT NULL,
    seed INTEGER NOT NULL, created REAL NOT NULL, result TEXT
);
CREATE INDEX IF NOT EXISTS board_runs_board ON board_runs (board_id, created);
"""


class BoardStore:
    """Boards, seats (who was given which value) and board runs, in `boards.sqlite` of the data folder.

    `folder=None` keeps them in memory (the run store could not be used either, or a test). Like the run
    store, a failing write never breaks the page: it is reported in `problem`, and reads give nothing.
    Writes that check a cap run in one `BEGIN IMMEDIATE` transaction, so two servers sharing the folder
    (Ray) cannot both take the last place.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.path = Path(folder) / DB_NAME if folder is not None else None
        self.notice = ""  # something to say once (a damaged file moved aside)
        self.problem = ""  # why the last write failed ("" while writes work)
        self._lock = threading.Lock()
        self._conn = self._open()

    # -- opening -------------------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            assert self.path is not None  # an in-memory database is never damaged
            aside = self.path.with_name(f"{DB_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(aside) + suffix))
            self.notice = f"The boards database was unreadable ({exc}); it was moved aside to {aside.name}."
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        target = str(self.path) if self.path is not None else ":memory:"
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise sqlite3.DatabaseError("a SQLite file of another program")
            if self.path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))],
                )
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
            self._conn.close()

    # -- reading and writing, never fatal ------------------------------------------------------------------------
    def _write(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `action` in one immediate transaction; a `LabError` it raises rolls back and goes to the caller.

        A database that stays locked, or refuses the write, raises `BoardError("error.boards.not_saved")`.
        """
        for attempt in range(LOCK_RETRIES):
            try:
                with self._lock:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = action(self._conn)
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                    self._conn.execute("COMMIT")
                self.problem = ""
                return result
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self.problem = str(exc)
                break
            except sqlite3.DatabaseError as exc:
                self.problem = str(exc)
                break
        else:
            self.problem = "the boards database stayed locked by another process"
        raise BoardError("error.boards.not_saved")

    def _read(self, query: str, args: tuple = ()) -> list[tuple]:
        for attempt in range(LOCK_RETRIES):
            try:
                with self._lock:
                    return self._conn.execute(query, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                return []
            except sqlite3.DatabaseError:
                return []
        return []

    # -- boards --------------------------------------------------------------------------------------------------
    def create(self, spec: BoardSpec, now: float | None = None) -> None:
        """Store a new board, within the caps: per class, or per owner and for the whole server when alone.

        When boards opened alone fill the server, the one nobody opened for longest goes first, if nobody
        opened it for `BOARD_IDLE_DAYS` (its runs stay in their owners' My runs).
        """
        now = time.time() if now is None else now

        def action(c: sqlite3.Connection) -> None:
            if spec.class_id is not None:
                (n,) = c.execute("SELECT COUNT(*) FROM boards WHERE class_id = ?", (spec.class_id,)).fetchone()
                if n >= MAX_BOARDS_PER_CLASS:
                    raise BoardError("error.boards.class_full", n=MAX_BOARDS_PER_CLASS)
            else:
                (mine,) = c.execute(
                    "SELECT COUNT(*) FROM boards WHERE owner = ? AND class_id IS NULL", (spec.owner,)
                ).fetchone()
                if mine >= MAX_BOARDS_PER_OWNER:
                    raise BoardError("error.boards.owner_full", n=MAX_BOARDS_PER_OWNER)
                (alone,) = c.execute("SELECT COUNT(*) FROM boards WHERE class_id IS NULL").fetchone()
                if alone >= MAX_BOARDS_ALONE_TOTAL:
                    idle = c.execute(
                        "SELECT id FROM boards WHERE class_id IS NULL AND opened < ? ORDER BY opened LIMIT 1",
                        (now - BOARD_IDLE_DAYS * 86400,),
                    ).fetchone()
                    if idle is None:
                        raise BoardError("error.boards.server_full", n=MAX_BOARDS_ALONE_TOTAL, days=BOARD_IDLE_DAYS)
                    _delete(c, idle[0])
            c.execute(
                "INSERT INTO boards (id, owner, class_id, spec, created, opened) VALUES (?, ?, ?, ?, ?, ?)",
                (spec.id, spec.owner, spec.class_id, spec.to_json(), spec.created or now, now),
            )

        self._write(action)

    def board(self, board_id: str) -> BoardSpec | None:
        if not isinstance(board_id, str) or not BOARD_ID.fullmatch(board_id):
            return None
        rows = self._read(f"SELECT {_BOARD_COLUMNS} FROM boards WHERE id = ?", (board_id,))
        return _spec(rows[0]) if rows else None

    def boards(self, owner: str, class_id: str | None = None) -> list[BoardSpec]:
        """The boards `owner` opened, and those of `class_id` (newest first)."""
        rows = self._read(
            f"SELECT {_BOARD_COLUMNS} FROM boards WHERE owner = ? OR (class_id IS NOT NULL AND class_id = ?) "
            "ORDER BY created DESC",
            (owner, class_id),
        )
        return [_spec(r) for r in rows]

    def touch(self, board_id: str, now: float | None = None) -> None:
        """Note that someone opened the board (an idle board opened alone may make room for a new one)."""
        try:
            self._write(
                lambda c: c.execute("UPDATE boards SET opened = ? WHERE id = ?", (now or time.time(), board_id))
            )
        except BoardError:
            pass  # only bookkeeping: a board that cannot say it was opened is still shown

    def delete(self, board_id: str, owner: str) -> bool:
        """Remove a board its opener no longer wants (the runs stay in their owners' My runs)."""

        def action(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT owner FROM boards WHERE id = ?", (board_id,)).fetchone()
            if row is None or row[0] != owner:
                return False
            _delete(c, board_id)
            return True

        return bool(self._write(action))

    # -- seats: which value each visitor was given ------------------------------------------------------------------
    def seat(self, board_id: str, owner: str) -> int | None:
        rows = self._read("SELECT value_index FROM seats WHERE board_id = ? AND owner = ?", (board_id, owner))
        return rows[0][0] if rows else None

    def claim_seat(self, board: BoardSpec, owner: str) -> int:
        """The value this visitor trains: theirs if they have one, else the one fewest were given (first in order).

        Several students opening the link at once get different values (one transaction each). Past
        `MAX_BOARD_SEATS` a visitor is still given the next value, just not remembered.
        """

        def action(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT value_index FROM seats WHERE board_id = ? AND owner = ?", (board.id, owner)
            ).fetchone()
            if row is not None:
                return int(row[0])
            counts = _seat_counts(c, board.id, len(board.values))
            index = min(range(len(counts)), key=lambda i: (counts[i], i))
            if sum(counts) < MAX_BOARD_SEATS:
                c.execute(
                    "INSERT INTO seats (board_id, owner, value_index, joined) VALUES (?, ?, ?, ?)",
                    (board.id, owner, index, time.time()),
                )
            return index

        return int(self._write(action))

    def move_seat(self, board: BoardSpec, owner: str, index: int) -> None:
        """The visitor picked another value."""
        if not 0 <= index < len(board.values):
            raise BoardError("error.boards.bad_value", value=str(index))
        self._write(
            lambda c: c.execute(
                "INSERT INTO seats (board_id, owner, value_index, joined) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (board_id, owner) DO UPDATE SET value_index = excluded.value_index",
                (board.id, owner, index, time.time()),
            )
        )

    def seat_counts(self, board: BoardSpec) -> list[int]:
        counts = [0] * len(board.values)
        for index, n in self._read(
            "SELECT value_index, COUNT(*) FROM seats WHERE board_id = ? GROUP BY value_index", (board.id,)
        ):
            if 0 <= index < len(counts):
                counts[index] = n
        return counts

    # -- runs ------------------------------------------------------------------------------------------------------
    def add_run(self, record: BoardRunRecord) -> None:
        self._write(
            lambda c: c.execute(
                "INSERT INTO board_runs (job_id, board_id, owner, value_index, seed, created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.job_id,
                    record.board_id,
                    record.owner,
                    record.value_index,
                    record.seed,
                    record.created,
                ),
            )
        )

    def runs(self, board_id: str) -> list[BoardRunRecord]:
        """The board's runs, oldest first."""
        rows = self._read(
            "SELECT job_id, board_id, owner, value_index, seed, created, result FROM board_runs "
            "WHERE board_id = ? ORDER BY created, job_id",
            (board_id,),
        )
        return [BoardRunRecord(*r[:6], result=_json_or_none(r[6])) for r in rows]

    def run_count(self, board_id: str, owner: str | None = None, value_index: int | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM board_runs WHERE board_id = ?", [board_id]
        if owner is not None:
            query, args = query + " AND owner = ?", [*args, owner]
        if value_index is not None:
            query, args = query + " AND value_index = ?", [*args, value_index]
        rows = self._read(query, tuple(args))
        return int(rows[0][0]) if rows else 0

    def owner_board_runs(self, owner: str) -> list[BoardRunRecord]:
        """Every board run of `owner` whose end the boards have not seen yet (for the owner's live cap)."""
        rows = self._read(
            "SELECT job_id, board_id, owner, value_index, seed, created FROM board_runs "
            "WHERE owner = ? AND result IS NULL",
            (owner,),
        )
        return [BoardRunRecord(*r) for r in rows]

    def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        """What a finished run showed, kept with the board: it outlives the run store's quota and the job."""
        try:
            self._write(
                lambda c: c.execute("UPDATE board_runs SET result = ? WHERE job_id = ?", (json.dumps(result), job_id))
            )
        except BoardError:
            pass  # the next snapshot tries again


_BOARD_COLUMNS = "id, owner, class_id, spec, created"


def _spec(row: tuple) -> BoardSpec:
    board_id, owner, class_id, raw, created = row
    data = json.loads(raw)
    return BoardSpec(
        id=board_id,
        title=data.get("title", ""),
        setting=data["setting"],
        values=tuple(data["values"]),
        base=data["base"],
        corpus=data["corpus"],
        preset=data.get("preset", ""),
        owner=owner,
        class_id=class_id,
        created=created,
    )


def _delete(c: sqlite3.Connection, board_id: str) -> None:
    c.execute("DELETE FROM board_runs WHERE board_id = ?", (board_id,))
    c.execute("DELETE FROM seats WHERE board_id = ?", (board_id,))
    c.execute("DELETE FROM boards WHERE id = ?", (board_id,))


def _seat_counts(c: sqlite3.Connection, board_id: str, n: int) -> list[int]:
    counts = [0] * n
    for index, count in c.execute(
        "SELECT value_index, COUNT(*) FROM seats WHERE board_id = ? GROUP BY value_index", (board_id,)
    ):
        if 0 <= index < n:
            counts[index] = count
    return counts


def _json_or_none(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
