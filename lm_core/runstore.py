"""The run store: every training run of the app in one SQLite file, plus checkpoint and corpus files.

Why a store: runs used to live only in the server's memory, so a restart lost
them all. Here each run is one row (owner, config, corpus identity, status,
epochs, best perplexity, checkpoint path), each finished epoch one row of
metrics, the corpus text one file named by its hash, and the weights one
checkpoint file per run, rewritten atomically after every epoch. A new server
on the same folder finds the runs that were live when the old one died and
marks them "interrupted at epoch k": they can be resumed from that checkpoint.

Failure is never fatal for training. A locked database is retried; a write
that still fails (disk full, folder made read-only) switches the store to
"degraded": training goes on in memory, `problem` says why, nothing already
written is touched. A corrupt or foreign database file is moved aside to
`<name>.corrupt-<timestamp>` and a fresh one is started, with a message.
A lock file makes a second server on the same folder refuse the store; servers
training on one Ray cluster share it instead (a shared lock), each writing the
runs it drives.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import LabError
from .files import write_atomically

DATA_ENV = "RNN_LAB_DATA"  # the data folder; default `lab-data/` in the working directory
DEFAULT_DATA_DIR = "lab-data"
DB_NAME = "runs.sqlite"
LOCK_NAME = "server.lock"
APP_ID = "rnn-lyrics-lab-runs"
SCHEMA_VERSION = 1
MAX_RUNS_PER_OWNER = 50  # finished runs beyond this are evicted, oldest first
MAX_BYTES_PER_OWNER = 200 * 1024 * 1024  # checkpoint bytes per owner before the oldest finished runs go
LOCK_RETRIES = 5  # attempts on "database is locked" after the busy timeout
BUSY_TIMEOUT_MS = 2000
LIVE_STATUSES = ("queued", "running", "paused")
FINISHED_STATUSES = ("finished", "stopped", "diverged", "error", "failed", "interrupted")

T = TypeVar("T")


class StoreError(LabError):
    """The data folder cannot be used (in use by another server, unreadable, ...)."""


@dataclass
class RunRecord:
    """One run as the store knows it (plain values only)."""

    id: str
    job_id: str
    run_index: int
    owner: str
    kind: str
    label: str
    config: dict[str, Any]
    corpus_name: str
    corpus_hash: str
    status: str
    message: str
    epoch: int
    planned: int
    best_perplexity: float | None
    created: float
    updated: float
    checkpoint_bytes: int
    group_labels: list[str]

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def data_dir() -> Path:
    """The data folder from `RNN_LAB_DATA`, else `lab-data/` in the working directory."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR).expanduser()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, run_index INTEGER NOT NULL, owner TEXT NOT NULL,
    kind TEXT NOT NULL, label TEXT NOT NULL, config TEXT NOT NULL, corpus_name TEXT NOT NULL,
    corpus_hash TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
    epoch INTEGER NOT NULL DEFAULT 0, planned INTEGER NOT NULL, best_perplexity REAL,
    created REAL NOT NULL, updated REAL NOT NULL, checkpoint_bytes INTEGER NOT NULL DEFAULT 0,
    group_labels TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner, created);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, epoch)
);
"""


class RunStore:
    """The SQLite file, the checkpoint files and the corpus files of one data folder."""

    def __init__(self, folder: str | Path | None = None, exclusive: bool = False, shared: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else data_dir()
        self.db_path = self.folder / DB_NAME
        self.notice = ""  # something the app should say once (a file moved aside)
        self.problem = ""  # why persistence is off now ("" while it works)
        self._lock = threading.Lock()
        self._lock_file = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "checkpoints").mkdir(exist_ok=True)
            (self.folder / "corpora").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(
                "error.runs.folder_failed",
                reason=exc.strerror,
            ) from exc
        if exclusive or shared:
            self._take_server_lock(shared=shared and not exclusive)
        self._conn = self._open()

    # -- opening ------------------------------------------------------------------------------------
    def _take_server_lock(self, shared: bool = False) -> None:
        """One server per data folder: a second one gets a StoreError instead of a shared, racing store.

        `shared`: servers on one Ray cluster share the folder with each other (each records only the runs
        it drives), but never with a server on a local backend, which holds the lock alone.
        """
        handle = open(self.folder / LOCK_NAME, "a+")  # noqa: SIM115 -- held open for the server's lifetime
        try:
            fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise StoreError(
                "error.runs.folder_taken",
            ) from exc
        self._lock_file = handle

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect_and_check()
        except sqlite3.DatabaseError as exc:
            aside = self.db_path.with_name(f"{DB_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.db_path) + suffix)
                if src.exists():
                    os.replace(src, Path(str(aside) + suffix))
            self.notice = (
                f"The run database was unreadable or not this app's ({exc}); it was moved aside to "
                f"{aside.name} and a new, empty one was started."
            )
            return self._connect_and_check()

    def _connect_and_check(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise sqlite3.DatabaseError("a SQLite file of another program")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
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
            self._conn.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    # -- writing, never fatal -------------------------------------------------------------------------
    def _write(self, action: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run `action` in a transaction; retry a locked database; on a lasting failure switch to degraded."""
        for attempt in range(LOCK_RETRIES):
            try:
                with self._lock, self._conn:
                    result = action(self._conn)
                if self.problem.startswith("db:"):
                    self.problem = ""
                return result
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self.problem = f"db: {exc}"
                return None
            except sqlite3.DatabaseError as exc:
                self.problem = f"db: {exc}"
                return None
        self.problem = "db: the run database stayed locked by another process"
        return None

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

    def _write_file(self, path: Path, data: bytes) -> bool:
        """Atomic file write; False (and `problem` set) when the disk refuses."""
        try:
            write_atomically(path, data)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            self.problem = "disk full" if full else f"cannot write files ({exc.strerror})"
            return False
        if not self.problem.startswith("db:"):
            self.problem = ""
        return True

    # -- runs ------------------------------------------------------------------------------------------
    def save_corpus(self, text: str) -> str:
        """Store the corpus text once per hash; returns the hash."""
        digest = text_hash(text)
        path = self.folder / "corpora" / f"{digest}.txt"
        if not path.exists():
            self._write_file(path, text.encode("utf-8"))
        return digest

    def corpus_text(self, digest: str) -> str | None:
        path = self.folder / "corpora" / f"{digest}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return text if text_hash(text) == digest else None

    def checkpoint_path(self, run_id: str) -> Path:
        return self.folder / "checkpoints" / f"{run_id}.pt"

    def add_run(self, record: RunRecord) -> list[str]:
        """Insert a run and enforce the owner's quota; returns the labels of evicted runs."""
        self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO runs (id, job_id, run_index, owner, kind, label, config, corpus_name, "
                "corpus_hash, status, message, epoch, planned, best_perplexity, created, updated, checkpoint_bytes, "
                "group_labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.job_id,
                    record.run_index,
                    record.owner,
                    record.kind,
                    record.label,
                    json.dumps(record.config),
                    record.corpus_name,
                    record.corpus_hash,
                    record.status,
                    record.message,
                    record.epoch,
                    record.planned,
                    record.best_perplexity,
                    record.created,
                    record.updated,
                    record.checkpoint_bytes,
                    json.dumps(record.group_labels),
                ),
            )
        )
        return self.enforce_quota(record.owner)

    def record_epoch(self, run_id: str, metrics: dict[str, Any], checkpoint: bytes | None) -> None:
        """One finished epoch: its metrics, and the run's checkpoint rewritten atomically."""
        size = None
        if checkpoint is not None and self._write_file(self.checkpoint_path(run_id), checkpoint):
            size = len(checkpoint)
        ppl = metrics.get("perplexity")
        ppl = ppl if isinstance(ppl, float) and math.isfinite(ppl) else None

        def action(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics) VALUES (?, ?, ?)",
                (run_id, metrics["epoch"], json.dumps(metrics)),
            )
            c.execute(
                "UPDATE runs SET epoch = ?, updated = ?, best_perplexity = CASE WHEN ? IS NOT NULL AND "
                "(best_perplexity IS NULL OR ? < best_perplexity) THEN ? ELSE best_perplexity END, "
                "checkpoint_bytes = COALESCE(?, checkpoint_bytes) WHERE id = ?",
                (metrics["epoch"], time.time(), ppl, ppl, ppl, size, run_id),
            )

        self._write(action)

    def set_status(self, run_id: str, status: str, message: str = "", planned: int | None = None) -> None:
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status = ?, message = ?, updated = ?, planned = COALESCE(?, planned) WHERE id = ?",
                (status, message, time.time(), planned, run_id),
            )
        )

    def runs(self, owner: str) -> list[RunRecord]:
        """The owner's runs, newest first (never another owner's)."""
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE owner = ? ORDER BY created DESC, run_index", (owner,))
        return [_record(r) for r in rows]

    def run(self, run_id: str, owner: str) -> RunRecord | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE id = ? AND owner = ?", (run_id, owner))
        return _record(rows[0]) if rows else None

    def history(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def delete(self, run_id: str, owner: str) -> bool:
        """Remove a run the owner has (its row, metrics and checkpoint); False if not theirs."""
        if self.run(run_id, owner) is None:
            return False

        def action(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ? AND owner = ?", (run_id, owner))

        self._write(action)
        self.checkpoint_path(run_id).unlink(missing_ok=True)
        return True

    def enforce_quota(self, owner: str) -> list[str]:
        """Evict the owner's oldest finished runs past MAX_RUNS_PER_OWNER or MAX_BYTES_PER_OWNER."""
        runs = self.runs(owner)  # newest first
        count, size = len(runs), sum(r.checkpoint_bytes for r in runs)
        evicted = []
        for record in reversed(runs):
            if count <= MAX_RUNS_PER_OWNER and size <= MAX_BYTES_PER_OWNER:
                break
            if record.status not in FINISHED_STATUSES:
                continue
            self.delete(record.id, owner)
            count, size = count - 1, size - record.checkpoint_bytes
            evicted.append(record.label)
        return evicted

    def live_runs(self) -> list[RunRecord]:
        """Every owner's runs the store thinks are live (queued, running, paused)."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM runs WHERE status IN ({','.join('?' * len(LIVE_STATUSES))})", LIVE_STATUSES
        )
        return [_record(r) for r in rows]

    def mark_interrupted(self, live_ids: set[str] | None = None, live_jobs: set[str] | None = None) -> list[str]:
        """Runs the store thinks are live but no worker holds: a server died. Returns their ids.

        `live_jobs`: jobs another server is still driving (a store shared by servers on one Ray cluster).
        """
        live_ids, live_jobs = live_ids or set(), live_jobs or set()
        gone = [(r.id, r.epoch) for r in self.live_runs() if r.id not in live_ids and r.job_id not in live_jobs]
        for rid, epoch in gone:
            self.set_status(rid, "interrupted", f"Interrupted at epoch {epoch} (the server stopped).")
        return [rid for rid, _ in gone]


_COLUMNS = (
    "id, job_id, run_index, owner, kind, label, config, corpus_name, corpus_hash, status, message, epoch, planned, "
    "best_perplexity, created, updated, checkpoint_bytes, group_labels"
)


def _record(row: tuple) -> RunRecord:
    values = list(row)
    values[6] = json.loads(values[6])
    values[17] = json.loads(values[17])
    return RunRecord(*values)
