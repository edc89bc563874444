"""Experiment boards: a class (or one student) varies one setting over a few values and sees every run on one chart.

A board is a definition (`BoardSpec`: the setting, its values, the preset's other settings, the corpus) and
the runs trained for it. Each run is a normal job of the job manager, owned by whoever started it; the board
only records which job trained which value (`BoardStore`, an SQLite file in the data folder, so a board and
its link outlive a restart). Who may see what: a board shows each run's curve, value, status, speed, greedy
line and its owner's display name, nothing else, and it offers no control over anyone's run; the page
controls only the viewer's own jobs through the manager, which checks the owner.

Why a shared snapshot: a board open on 30 screens while 30 runs train must not be rebuilt 30 times a second.
`Boards.snapshot` builds one `BoardSnapshot` per board per `SNAPSHOT_SECONDS`, whoever asks first, and hands
the same object to every viewer until it is stale (viewers asking while it is being built wait for it).

The engine never imports Streamlit; the page (`lab_ui/board_ui.py`) turns a snapshot into charts and text.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import LabError
from .jobs import DONE_STATUSES
from .limits import (
    BOARD_IDLE_DAYS,
    MAX_BOARD_EPOCHS,
    MAX_BOARD_RUNS,
    MAX_BOARD_RUNS_PER_STUDENT,
    MAX_BOARD_SEATS,
    MAX_BOARD_TITLE,
    MAX_BOARD_VALUES,
    MAX_BOARDS_ALONE_TOTAL,
    MAX_BOARDS_PER_CLASS,
    MAX_BOARDS_PER_OWNER,
    MAX_LIVE_BOARD_RUNS,
    MAX_LIVE_BOARD_RUNS_PER_OWNER,
)
from .models import MODEL_KINDS
from .sampling import MODES
from .songci import SUBSETS
from .training import TrainConfig

DB_NAME = "boards.sqlite"
APP_ID = "rnn-lyrics-lab-boards"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 2000
LOCK_RETRIES = 5
SNAPSHOT_SECONDS = 1.0  # a board's snapshot is rebuilt at most this often, whatever the number of viewers
KIND = "board"  # the `kind` of every job trained for a board (My runs lists them with the owner's other runs)
BOARD_ID = re.compile(r"[0-9a-f]{16}")  # what `new_board_id` makes: anything else is never looked up
MAX_CORPUS_CHARS = 2_000_000  # a board's corpus size setting, as the corpus picker bounds it
CORPUS_SOURCES = ("songci", "book")  # corpora every student's server has: uploads and pasted text are not shared
TOUCH_EVERY = 3600.0  # seconds: a board's "last opened" is written at most this often


class BoardError(LabError):
    """A board cannot be made, found or trained on as asked (a cap met, a value that is not one)."""


# -- the settings a board may vary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A setting a board varies: its `TrainConfig` field and the kind of its values."""

    name: str
    kind: str  # "float" | "int" | "choice"
    choices: tuple[str, ...] = ()  # the allowed values, in order, for a "choice"
    optional: bool = False  # None is a value (clipping off)


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("lr", "float"),
        Variable("hidden", "int"),
        Variable("num_steps", "int"),
        Variable("batch_size", "int"),
        Variable("sampling", "choice", MODES),
        Variable("clip", "float", optional=True),
        Variable("model", "choice", MODEL_KINDS),
    )
}


def normalise_values(setting: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """The values of `setting` a board will use, checked and in their natural order (None first).

    Refuses a setting that is not one of `VARIABLES`, fewer than two distinct values, more than
    `MAX_BOARD_VALUES`, and a value of the wrong kind; each value's range is checked by the config later.
    """
    variable = VARIABLES.get(setting)
    if variable is None:
        raise BoardError("error.boards.bad_setting", name=str(setting)[:40])
    out: list[Any] = []
    for value in values:
        value = _one_value(variable, value)
        if value not in out:
            out.append(value)
    if len(out) < 2:
        raise BoardError("error.boards.few_values")
    if len(out) > MAX_BOARD_VALUES:
        raise BoardError("error.boards.many_values", n=MAX_BOARD_VALUES)
    if variable.kind == "choice":
        return tuple(sorted(out, key=variable.choices.index))
    return tuple(sorted(out, key=lambda v: -math.inf if v is None else v))


def _one_value(variable: Variable, value: Any) -> Any:
    if value is None and variable.optional:
        return None
    if variable.kind == "choice":
        if isinstance(value, str) and value in variable.choices:
            return value
    elif isinstance(value, bool):
        pass
    elif variable.kind == "int" and isinstance(value, int):
        return value
    elif variable.kind == "float" and isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise BoardError("error.boards.bad_value", value=str(value)[:40])


def check_corpus(spec: dict[str, Any]) -> dict[str, Any]:
    """A board's corpus: the bundled Song ci (a subset) or the book's corpus as the operator provided it.

    Both can be rebuilt from the spec alone on any day, by any student's browser; an uploaded or pasted
    text could not, so a board refuses it.
    """
    source = spec.get("source")
    max_chars = spec.get("max_chars")
    if source not in CORPUS_SOURCES:
        raise BoardError("error.boards.corpus")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or not 1 <= max_chars <= MAX_CORPUS_CHARS
    ):
        raise BoardError("error.boards.corpus")
    if source == "songci":
        subset = spec.get("subset")
        if subset not in SUBSETS:
            raise BoardError("error.boards.corpus")
        return {"source": source, "subset": subset, "max_chars": max_chars}
    return {"source": source, "max_chars": max_chars}


# -- a board's definition ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardSpec:
    """What a board trains: `setting` over `values`, everything else as in `base` (a `TrainConfig` dict)."""

    id: str
    title: str
    setting: str
    values: tuple[Any, ...]
    base: dict[str, Any]
    corpus: dict[str, Any]
    preset: str  # the preset `base` came from, by name (shown; `base` is what counts)
    owner: str  # who opened it (their runs are not bounded by MAX_BOARD_RUNS_PER_STUDENT)
    class_id: str | None = None  # the class whose board it is; None: opened alone
    created: float = 0.0

    @property
    def epochs(self) -> int:
        return int(self.base["epochs"])

    def config(self, value_index: int, seed: int | None = None) -> TrainConfig:
        """The settings of a run of value `value_index` (and `seed`, else the preset's)."""
        cfg = TrainConfig.from_dict({**self.base, self.setting: self.values[value_index]})
        if seed is not None:
            cfg.seed = seed
        return cfg

    def to_json(self) -> str:
        return json.dumps(
            {
                "title": self.title,
                "setting": self.setting,
                "values": list(self.values),
                "base": self.base,
                "corpus": self.corpus,
                "preset": self.preset,
            }
        )


def new_board(
    owner: str,
    setting: str,
    values: Iterable[Any],
    base: TrainConfig,
    corpus: dict[str, Any],
    preset: str = "",
    title: str = "",
    class_id: str | None = None,
) -> BoardSpec:
    """A checked board definition with a fresh id (not yet stored: `BoardStore.create` does that).

    Every value's run settings are checked as the Train button would (`TrainConfig.validate`), so a board
    never offers a value that cannot train.
    """
    title = " ".join(str(title).split())
    if len(title) > MAX_BOARD_TITLE:
        raise BoardError("error.boards.title", n=MAX_BOARD_TITLE)
    if not isinstance(base.epochs, int) or not 1 <= base.epochs <= MAX_BOARD_EPOCHS:
        raise BoardError("error.boards.epochs", n=MAX_BOARD_EPOCHS)
    spec = BoardSpec(
        id=new_board_id(),
        title=title,
        setting=setting,
        values=normalise_values(setting, values),
        base={**base.to_dict(), "patience": 0},  # every run trains all its epochs: the curves end together
        corpus=check_corpus(corpus),
        preset=str(preset)[:40],
        owner=owner,
        class_id=class_id,
        created=time.time(),
    )
    for i in range(len(spec.values)):
        spec.config(i).validate()
    return spec


def new_board_id() -> str:
    return secrets.token_hex(8)


# -- what the store keeps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRunRecord:
    """A job trained for a board: whose, which value, which seed; `result` once the board saw it end."""

    job_id: str
    board_id: str
    owner: str
    name: str | None  # the owner's display name when they started it (None: no name, e.g. no class)
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
    job_id TEXT PRIMARY KEY, board_id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT, value_index INTEGER NOT NULL,
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
                "INSERT INTO board_runs (job_id, board_id, owner, name, value_index, seed, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.job_id,
                    record.board_id,
                    record.owner,
                    record.name,
                    record.value_index,
                    record.seed,
                    record.created,
                ),
            )
        )

    def runs(self, board_id: str) -> list[BoardRunRecord]:
        """The board's runs, oldest first."""
        rows = self._read(
            "SELECT job_id, board_id, owner, name, value_index, seed, created, result FROM board_runs "
            "WHERE board_id = ? ORDER BY created, job_id",
            (board_id,),
        )
        return [BoardRunRecord(*r[:7], result=_json_or_none(r[7])) for r in rows]

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
            "SELECT job_id, board_id, owner, name, value_index, seed, created FROM board_runs "
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


# -- what a board shows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRun:
    """One run as the board draws it: plain numbers and text, the same for every viewer.

    `owner` is for the page to recognise the viewer's own runs; it is never shown or sent to a browser.
    """

    job_id: str
    owner: str
    name: str | None
    anonymous_number: int  # 1, 2, ... among the board's owners without a name (0: has a name)
    value_index: int
    seed: int
    status: str
    queue_position: int
    planned: int
    epochs: tuple[int, ...] = ()
    perplexity: tuple[float, ...] = ()
    seconds: tuple[float, ...] = ()
    greedy: str = ""  # the latest greedy continuation of `prefix`
    prefix: str = ""
    node: str = ""  # the Ray node that trains it (empty: this machine)

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def best(self) -> float | None:
        finite = [p for p in self.perplexity if math.isfinite(p)]
        return min(finite) if finite else None

    @property
    def final(self) -> float | None:
        return self.perplexity[-1] if self.perplexity and math.isfinite(self.perplexity[-1]) else None

    @property
    def seconds_per_epoch(self) -> float | None:
        return sum(self.seconds) / len(self.seconds) if self.seconds else None


@dataclass(frozen=True)
class BoardSnapshot:
    """A board and all its runs at one moment; `token` changes whenever anything drawn would."""

    board: BoardSpec
    runs: tuple[BoardRun, ...]
    seats: tuple[int, ...]  # visitors given each value
    token: str
    built: float

    @property
    def live(self) -> bool:
        return any(not r.done for r in self.runs)

    def by_value(self) -> list[list[BoardRun]]:
        out: list[list[BoardRun]] = [[] for _ in self.board.values]
        for run in self.runs:
            if 0 <= run.value_index < len(out):
                out[run.value_index].append(run)
        return out


class JobSource(Protocol):
    """What a board needs of the job manager: an owner's job by id (touched: a watched board run stays), its view."""

    def get(self, job_id: str | None, owner: str) -> Any: ...

    def view(self, job: Any) -> Any: ...


def result_of(run: BoardRun) -> dict[str, Any]:
    """What `BoardStore.save_result` keeps of a run that ended."""
    return {
        "status": run.status,
        "planned": run.planned,
        "epochs": list(run.epochs),
        "perplexity": list(run.perplexity),
        "seconds": list(run.seconds),
        "greedy": run.greedy,
        "prefix": run.prefix,
    }


def _from_view(record: BoardRunRecord, view: Any, node: str) -> dict[str, Any]:
    run = view.runs[0]
    history = run.history
    greedy, prefix = "", ""
    if run.samples:
        latest = run.samples[max(run.samples)]
        if latest:
            prefix, greedy = next(iter(latest.items()))
    return {
        "status": view.status,
        "queue_position": view.queue_position,
        "planned": view.planned_epochs,
        "epochs": tuple(h["epoch"] for h in history),
        "perplexity": tuple(float(h["perplexity"]) for h in history),
        "seconds": tuple(float(h["seconds"]) for h in history),
        "greedy": greedy,
        "prefix": prefix,
        "node": node,
    }


def _from_result(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": str(result.get("status", "interrupted")),
        "queue_position": 0,
        "planned": int(result.get("planned", 0)),
        "epochs": tuple(int(e) for e in result.get("epochs", [])),
        "perplexity": tuple(float(p) for p in result.get("perplexity", [])),
        "seconds": tuple(float(s) for s in result.get("seconds", [])),
        "greedy": str(result.get("greedy", "")),
        "prefix": str(result.get("prefix", "")),
    }


def _from_run_store(record: BoardRunRecord, run_store: Any, planned: int) -> dict[str, Any]:
    """A run this server does not hold (it restarted): what the run store kept of it."""
    run_id = f"{record.job_id}-0"
    stored = run_store.run(run_id, record.owner) if run_store is not None else None
    history = run_store.history(run_id) if stored is not None else []
    return {
        "status": stored.status if stored is not None and stored.status in DONE_STATUSES else "interrupted",
        "queue_position": 0,
        "planned": stored.planned if stored is not None else planned,
        "epochs": tuple(h["epoch"] for h in history),
        "perplexity": tuple(float(h["perplexity"]) for h in history),
        "seconds": tuple(float(h["seconds"]) for h in history),
    }


class Boards:
    """The boards of a server: the store, the jobs they trained, one shared snapshot per board, and the caps.

    `jobs` is the job manager (`get` checks the owner, so a board can only read a run through the name
    of the owner it recorded); `run_store` (optional) supplies what a run left behind after a restart.
    """

    def __init__(
        self, store: BoardStore, jobs: JobSource | None = None, run_store: Any = None, ttl: float = SNAPSHOT_SECONDS
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.run_store = run_store
        self.ttl = ttl
        self.builds = 0  # snapshots built (the load test and a unit test count them)
        self._cache: dict[str, BoardSnapshot] = {}
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._start = threading.Lock()  # caps are checked and runs added one start at a time
        self._touched: dict[str, float] = {}
        self._live: dict[str, str] = {}  # job id -> owner of every board run started here and not seen to end

    # -- reading -----------------------------------------------------------------------------------------------------
    def board(self, board_id: str) -> BoardSpec | None:
        """The board (and a note that it was opened, at most once an hour)."""
        board = self.store.board(board_id)
        if board is not None:
            now = time.time()
            if now - self._touched.get(board_id, 0.0) > TOUCH_EVERY:
                self._touched[board_id] = now
                self.store.touch(board_id, now)
        return board

    def snapshot(self, board: BoardSpec) -> BoardSnapshot:
        """The board's runs now, built at most once per `ttl` seconds whoever asks (they all get the same)."""
        cached = self._fresh(board.id)
        if cached is not None:
            return cached
        with self._lock:
            building = self._building.setdefault(board.id, threading.Lock())
        with building:  # one builder; the others wait for it and take its snapshot
            cached = self._fresh(board.id)
            if cached is not None:
                return cached
            snapshot = self._build(board)
            with self._lock:
                self._cache[board.id] = snapshot
                for old in [k for k, s in self._cache.items() if snapshot.built - s.built > 60]:
                    self._cache.pop(old, None)
                    self._building.pop(old, None)
            return snapshot

    def invalidate(self, board_id: str) -> None:
        """Drop the board's snapshot: the next viewer sees a run that was just added."""
        with self._lock:
            self._cache.pop(board_id, None)

    def _fresh(self, board_id: str) -> BoardSnapshot | None:
        with self._lock:
            cached = self._cache.get(board_id)
        if cached is not None and time.monotonic() - cached.built < self.ttl:
            return cached
        return None

    def _build(self, board: BoardSpec) -> BoardSnapshot:
        self.builds += 1
        records = self.store.runs(board.id)
        anonymous: dict[str, int] = {}
        runs = []
        for record in records:
            if record.name is None and record.owner not in anonymous:
                anonymous[record.owner] = len(anonymous) + 1
            data = self._run_data(board, record)
            run = BoardRun(
                job_id=record.job_id,
                owner=record.owner,
                name=record.name,
                anonymous_number=0 if record.name is not None else anonymous[record.owner],
                value_index=record.value_index,
                seed=record.seed,
                **data,
            )
            if run.done and (record.result is None or record.result.get("epochs") != list(run.epochs)):
                self.store.save_result(record.job_id, result_of(run))
            runs.append(run)
        seats = tuple(self.store.seat_counts(board))
        token = hashlib.blake2b(
            repr([(r.job_id, r.status, r.queue_position, len(r.epochs), r.greedy) for r in runs]).encode()
            + repr(seats).encode(),
            digest_size=8,
        ).hexdigest()
        return BoardSnapshot(board, tuple(runs), seats, token, time.monotonic())

    def _run_data(self, board: BoardSpec, record: BoardRunRecord) -> dict[str, Any]:
        job = self.jobs.get(record.job_id, record.owner) if self.jobs is not None else None
        if job is not None:
            view = self.jobs.view(job)
            if view.done:
                with self._lock:
                    self._live.pop(record.job_id, None)
            return _from_view(record, view, str(getattr(job, "node_id", "") or ""))
        with self._lock:
            self._live.pop(record.job_id, None)
        if record.result is not None:
            return _from_result(record.result)
        return {**_from_run_store(record, self.run_store, board.epochs), "greedy": "", "prefix": ""}

    # -- training ------------------------------------------------------------------------------------------------
    def start(
        self,
        board: BoardSpec,
        owner: str,
        name: str | None,
        value_indexes: Sequence[int],
        submit: Callable[[TrainConfig], str],
    ) -> list[str]:
        """Train one run per value in `value_indexes` for `owner`, within the caps; returns the new job ids.

        `submit(config)` hands a run's settings to the job manager and returns its job id. Each run's seed
        is the preset's plus the number of runs that value already has, so a value's first run uses the
        preset's seed (values compared at equal seeds) and repeats spread.
        """
        if not value_indexes or any(not 0 <= i < len(board.values) for i in value_indexes):
            raise BoardError("error.boards.bad_value", value=str(list(value_indexes))[:40])
        with self._start:
            self._check_caps(board, owner, len(value_indexes))
            started = []
            for index in value_indexes:
                seed = int(board.base.get("seed", 0)) + self.store.run_count(board.id, value_index=index)
                config = board.config(index, seed)
                config.validate()
                job_id = submit(config)
                self.store.add_run(BoardRunRecord(job_id, board.id, owner, name, index, seed, time.time()))
                with self._lock:
                    self._live[job_id] = owner
                started.append(job_id)
        self.invalidate(board.id)
        return started

    def _check_caps(self, board: BoardSpec, owner: str, n: int) -> None:
        if self.store.run_count(board.id) + n > MAX_BOARD_RUNS:
            raise BoardError("error.boards.runs_full", n=MAX_BOARD_RUNS)
        if owner != board.owner and self.store.run_count(board.id, owner=owner) + n > MAX_BOARD_RUNS_PER_STUDENT:
            raise BoardError("error.boards.student_full", n=MAX_BOARD_RUNS_PER_STUDENT)
        mine = self.live_runs(owner)
        if owner != board.owner and any(r.board_id == board.id for r in mine):
            raise BoardError("error.boards.one_live")
        if len(mine) + n > MAX_LIVE_BOARD_RUNS_PER_OWNER:
            raise BoardError("error.boards.owner_live", n=MAX_LIVE_BOARD_RUNS_PER_OWNER)
        if self.live_count() + n > MAX_LIVE_BOARD_RUNS:
            raise BoardError("error.boards.server_live", n=MAX_LIVE_BOARD_RUNS)

    def live_runs(self, owner: str) -> list[BoardRunRecord]:
        """The owner's board runs (any board) that are queued or training on this server now."""
        return [r for r in self.store.owner_board_runs(owner) if self._alive(r.job_id, owner)]

    def live_count(self) -> int:
        """Board runs queued or training on this server now (everyone's)."""
        with self._lock:
            live = list(self._live.items())
        return sum(self._alive(job_id, owner) for job_id, owner in live)

    def _alive(self, job_id: str, owner: str) -> bool:
        job = self.jobs.get(job_id, owner) if self.jobs is not None else None
        alive = job is not None and not job.done
        if not alive:
            with self._lock:
                self._live.pop(job_id, None)
        return alive
