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
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LabError
from ..files import write_atomically
from ..limits import MAX_BYTES_PER_OWNER, MAX_RUNS_PER_OWNER
from .database import Database
from .views import DONE_STATUSES, LIVE_STATUSES

log = logging.getLogger(__name__)
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
        # A corpus file is shared by every run of that text: adding a run and deleting the last user of its
        # text must not interleave, or a new run's text could be deleted under it.
        self._corpus_lock = threading.Lock()
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
        try:
            self.db = Database(self.folder / DB_NAME, _SCHEMA)
        except (OSError, sqlite3.OperationalError) as exc:  # a folder made read-only: the file cannot be opened
            self.close()
            raise StoreError("error.runs.folder_unwritable", reason=_reason(exc)) from exc
        if exclusive:  # alone on the folder: texts left by runs deleted before texts went with them
            self._drop_unused_corpora()

    @property
    def notice(self) -> str:
        """Something the app should say once (the database file was moved aside)."""
        return self.db.notice

    @property
    def problem(self) -> str:
        """Why some runs were not saved since the server started ("" while every write worked)."""
        return f"db: {self.db.problem}" if self.db.problem else self._file_problem

    def _take_server_lock(self, shared: bool = False) -> None:
        """One server per data folder: a second one gets a StoreError instead of a shared, racing store.

        `shared`: servers on one Ray cluster share the folder with each other (each records only the runs
        it drives), but never with a server on a local backend, which holds the lock alone.
        """
        try:
            handle = open(self.folder / LOCK_NAME, "a+")  # noqa: SIM115 -- held open for the server's lifetime
        except OSError as exc:  # a read-only folder (or file system): no lock, so no store, said on every page
            raise StoreError("error.runs.folder_unwritable", reason=_reason(exc)) from exc
        try:
            fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise StoreError(
                "error.runs.folder_taken",
            ) from exc
        self._lock_file = handle

    def close(self) -> None:
        if hasattr(self, "db"):
            self.db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def _write_file(self, path: Path, data: bytes) -> bool:
        """Atomic file write; False (and `problem` set, for good: a file was not saved) when the disk refuses."""
        try:
            write_atomically(path, data)
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            problem = "disk full" if full else f"cannot write files ({exc.strerror})"
            log.warning("Run store: %s could not be written: %s", path.name, exc.strerror)
            self._file_problem = self._file_problem or problem
            return False
        return True

    # -- corpora and checkpoints ------------------------------------------------------------------------
    def corpus_path(self, digest: str) -> Path:
        return self.folder / "corpora" / f"{digest}.txt"

    def save_corpus(self, text: str) -> str:
        """Store the corpus text once per hash (a corpus's `document_text()`); returns the hash.

        A text no run uses is deleted with its last run: store it through `add_run(record, text)`.
        """
        digest = text_hash(text)
        path = self.corpus_path(digest)
        if not path.exists():
            self._write_file(path, text.encode("utf-8"))
        return digest

    def corpus_size(self, digest: str) -> int:
        """Bytes of a stored text on disk (0 when it is not there)."""
        try:
            return self.corpus_path(digest).stat().st_size
        except OSError:
            return 0

    def _drop_unused_corpora(self) -> None:
        """Delete every text file no run names (only when the database could be read: never on a guess)."""
        with self._corpus_lock:
            used = self.db.write(lambda c: {r[0] for r in c.execute("SELECT DISTINCT corpus_hash FROM runs")})
            if used is None:
                return
            for path in (self.folder / "corpora").glob("*.txt"):
                if path.stem not in used:
                    path.unlink(missing_ok=True)

    def corpus_text(self, digest: str) -> str | None:
        """The text `save_corpus` stored, None when missing or altered."""
        path = self.corpus_path(digest)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return text if text_hash(text) == digest else None

    def checkpoint_path(self, run_id: str) -> Path:
        return self.folder / "checkpoints" / f"{run_id}.pt"

    # -- runs ------------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord, text: str | None = None) -> list[str]:
        """Insert a run (and its corpus `text`, stored once per hash) and enforce the owner's quota.

        Returns the labels of evicted runs. The row is written before the text, so a run deleted meanwhile
        never takes this run's text with it.
        """
        values = [getattr(record, name) for name in _COLUMNS.replace(" ", "").split(",")]
        values[6], values[17] = json.dumps(record.config), json.dumps(record.group_labels)
        with self._corpus_lock:
            self.db.write(
                lambda c: c.execute(
                    f"INSERT OR REPLACE INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values
                )
            )
            if text is not None:
                self.save_corpus(text)
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
            updated = c.execute(
                "UPDATE runs SET epoch = ?, updated = ?, best_perplexity = CASE WHEN ? IS NOT NULL AND "
                "(best_perplexity IS NULL OR ? < best_perplexity) THEN ? ELSE best_perplexity END, "
                "checkpoint_bytes = COALESCE(?, checkpoint_bytes) WHERE id = ?",
                (metrics["epoch"], time.time(), ppl, ppl, ppl, size, run_id),
            )
            _row_is_there(updated)

        self.db.write(action)

    def set_status(self, run_id: str, status: str, message: str = "", planned: int | None = None) -> None:
        self.db.write(
            lambda c: _row_is_there(
                c.execute(
                    "UPDATE runs SET status = ?, message = ?, updated = ?, planned = COALESCE(?, planned) WHERE id = ?",
                    (status, message, time.time(), planned, run_id),
                )
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
        """Remove a run the owner has: its row, metrics, checkpoint, and its text once no run uses it.

        False if it is not theirs, or when the database refuses (then its files stay with it).
        """
        record = self.run(run_id, owner)
        if record is None:
            return False

        def action(c: sqlite3.Connection) -> int:
            c.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM runs WHERE id = ? AND owner = ?", (run_id, owner))
            return c.execute("SELECT COUNT(*) FROM runs WHERE corpus_hash = ?", (record.corpus_hash,)).fetchone()[0]

        with self._corpus_lock:
            users = self.db.write(action)
            if users is None:
                return False
            self.checkpoint_path(run_id).unlink(missing_ok=True)
            if users == 0:
                self.corpus_path(record.corpus_hash).unlink(missing_ok=True)
        return True

    def owner_bytes(self, records: list[RunRecord]) -> int:
        """What these runs hold on disk: their checkpoints, and each text they use once."""
        return sum(r.checkpoint_bytes for r in records) + sum(
            self.corpus_size(h) for h in {r.corpus_hash for r in records}
        )

    def reassign(self, old_owner: str, new_owner: str) -> int:
        """File every run of `old_owner` under `new_owner` (a browser's runs brought along when its user joins a
        class); returns how many moved. The new owner's quota applies from their next run."""
        moved = self.db.write(
            lambda c: c.execute("UPDATE runs SET owner = ? WHERE owner = ?", (new_owner, old_owner)).rowcount
        )
        return moved or 0

    def enforce_quota(self, owner: str) -> list[str]:
        """Evict the owner's oldest finished runs past MAX_RUNS_PER_OWNER or MAX_BYTES_PER_OWNER.

        The bytes are the owner's checkpoints and the texts their runs use (a run stopped before its first
        epoch has no checkpoint, but its text is on disk all the same).
        """
        kept = self.runs(owner)  # newest first
        evicted = []
        for record in list(reversed(kept)):
            if len(kept) <= MAX_RUNS_PER_OWNER and self.owner_bytes(kept) <= MAX_BYTES_PER_OWNER:
                break
            if record.status not in DONE_STATUSES or not self.delete(record.id, owner):
                continue
            kept.remove(record)
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


def _reason(exc: BaseException) -> str:
    """Why a file could not be opened, without its path (a visitor never learns the server's folders)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def _row_is_there(cursor: sqlite3.Cursor) -> None:
    """A live run's update that changed no row: its row was never written (a store that refused new data
    accepts an update with nothing to change), so the run would be lost without a word."""
    if cursor.rowcount == 0:
        raise sqlite3.DatabaseError("a run is missing from the run database (an earlier write failed)")


SHORT_ID = 4  # characters of a job id that tell one owner's runs apart in a name (more only if they clash)


def short_ids(records: list[RunRecord]) -> dict[str, str]:
    """A short, distinct tag for each run (`a3f9`, `a3f9/2` for the second run of a comparison), by run id.

    Two runs with the same settings made the same minute would otherwise have the same name, and a
    browser picks an option by the name it shows: it has to be unique, or a click acts on another run.
    """
    jobs = sorted({r.job_id for r in records})
    width = SHORT_ID
    while width < max((len(j) for j in jobs), default=0) and len({j[:width] for j in jobs}) < len(jobs):
        width += 1
    return {r.id: r.job_id[:width] + (f"/{r.run_index + 1}" if len(r.group_labels) > 1 else "") for r in records}


def _record(row: tuple) -> RunRecord:
    values = list(row)
    values[6] = json.loads(values[6])
    values[17] = json.loads(values[17])
    return RunRecord(*values)
