"""The run store: every training run of the app in one SQLite file, plus checkpoint and corpus files.

Why a store: runs used to live only in the server's memory, so a restart lost
them all. Here each run is one row (owner, config, corpus identity, status,
epochs, best perplexity, checkpoint path), each finished epoch one row of
metrics, the corpus text one file named by its hash, and the weights one
checkpoint file per run, rewritten atomically after every epoch. A new server
on the same folder finds the runs that were live when the old one died and
marks them "interrupted at epoch k": they can be resumed from that checkpoint.

Failure is never fatal for training (see `database`): training goes on in
memory and `problem` says why nothing is saved. A lock file makes a second
server on the same folder refuse the store; servers training on one Ray
cluster share it instead (a shared lock), each writing the runs it drives.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LabError
from ..files import write_atomically
from ..limits import MAX_BYTES_PER_OWNER, MAX_RUNS_PER_OWNER
from .database import Database
from .views import DONE_STATUSES, LIVE_STATUSES

DATA_ENV = "RNN_LAB_DATA"  # the data folder; default `lab-data/` in the working directory
DEFAULT_DATA_DIR = "lab-data"
DB_NAME = "runs.sqlite"
LOCK_NAME = "server.lock"


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

    @property
    def stopped_early(self) -> bool:
        """A run ends "finished" before its planned epochs only when early stopping ended it."""
        return self.status == "finished" and self.epoch < self.planned


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
_COLUMNS = (
    "id, job_id, run_index, owner, kind, label, config, corpus_name, corpus_hash, status, message, epoch, planned, "
    "best_perplexity, created, updated, checkpoint_bytes, group_labels"
)


class RunStore:
    """The SQLite file, the checkpoint files and the corpus files of one data folder."""

    def __init__(self, folder: str | Path | None = None, exclusive: bool = False, shared: bool = False) -> None:
        self.folder = Path(folder) if folder is not None else data_dir()
        self._lock_file = None
        self._file_problem = ""
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
        self.db = Database(self.folder / DB_NAME, _SCHEMA)

    @property
    def notice(self) -> str:
        """Something the app should say once (the database file was moved aside)."""
        return self.db.notice

    @property
    def problem(self) -> str:
        """Why runs are not being saved right now ("" while they are)."""
        return f"db: {self.db.problem}" if self.db.problem else self._file_problem

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

    def close(self) -> None:
        self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _write_file(self, path: Path, data: bytes) -> bool:
        """Atomic file write; False (and `problem` set) when the disk refuses."""
        try:
            write_atomically(path, data)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            self._file_problem = "disk full" if full else f"cannot write files ({exc.strerror})"
            return False
        self._file_problem = ""
        return True

    # -- corpora and checkpoints ------------------------------------------------------------------------
    def save_corpus(self, text: str) -> str:
        """Store the corpus text once per hash (a corpus's `document_text()`); returns the hash."""
        digest = text_hash(text)
        path = self.folder / "corpora" / f"{digest}.txt"
        if not path.exists():
            self._write_file(path, text.encode("utf-8"))
        return digest

    def corpus_text(self, digest: str) -> str | None:
        """The text `save_corpus` stored, None when missing or altered."""
        path = self.folder / "corpora" / f"{digest}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return text if text_hash(text) == digest else None

    def checkpoint_path(self, run_id: str) -> Path:
        return self.folder / "checkpoints" / f"{run_id}.pt"

    # -- runs ------------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord) -> list[str]:
        """Insert a run and enforce the owner's quota; returns the labels of evicted runs."""
        values = [getattr(record, name) for name in _COLUMNS.replace(" ", "").split(",")]
        values[6], values[17] = json.dumps(record.config), json.dumps(record.group_labels)
        self.db.write(
            lambda c: c.execute(
                f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values
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

        self.db.write(action)

    def set_status(self, run_id: str, status: str, message: str = "", planned: int | None = None) -> None:
        self.db.write(
            lambda c: c.execute(
                "UPDATE runs SET status = ?, message = ?, updated = ?, planned = COALESCE(?, planned) WHERE id = ?",
                (status, message, time.time(), planned, run_id),
            )
        )

    def runs(self, owner: str) -> list[RunRecord]:
        """The owner's runs, newest first (never another owner's)."""
        rows = self.db.read(f"SELECT {_COLUMNS} FROM runs WHERE owner = ? ORDER BY created DESC, run_index", (owner,))
        return [_record(r) for r in rows]

    def run(self, run_id: str, owner: str) -> RunRecord | None:
        rows = self.db.read(f"SELECT {_COLUMNS} FROM runs WHERE id = ? AND owner = ?", (run_id, owner))
        return _record(rows[0]) if rows else None

    def history(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.read("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def delete(self, run_id: str, owner: str) -> bool:
        """Remove a run the owner has (its row, metrics and checkpoint); False if not theirs."""
        if self.run(run_id, owner) is None:
            return False

        def action(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ? AND owner = ?", (run_id, owner))

        self.db.write(action)
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
            if record.status not in DONE_STATUSES:
                continue
            self.delete(record.id, owner)
            count, size = count - 1, size - record.checkpoint_bytes
            evicted.append(record.label)
        return evicted

    def live_runs(self) -> list[RunRecord]:
        """Every owner's runs the store thinks are live (queued, running, paused)."""
        marks = ",".join("?" * len(LIVE_STATUSES))
        return [
            _record(r) for r in self.db.read(f"SELECT {_COLUMNS} FROM runs WHERE status IN ({marks})", LIVE_STATUSES)
        ]

    def mark_interrupted(self, live_jobs: set[str] | None = None) -> list[str]:
        """Runs the store thinks are live but no worker holds: a server died. Returns their ids.

        `live_jobs`: jobs another server is still driving (a store shared by servers on one Ray cluster).
        """
        live_jobs = live_jobs or set()
        gone = [(r.id, r.epoch) for r in self.live_runs() if r.job_id not in live_jobs]
        for rid, epoch in gone:
            self.set_status(rid, "interrupted", f"Interrupted at epoch {epoch} (the server stopped).")
        return [rid for rid, _ in gone]


def _record(row: tuple) -> RunRecord:
    values = list(row)
    values[6] = json.loads(values[6])
    values[17] = json.loads(values[17])
    return RunRecord(*values)
