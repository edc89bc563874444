"""What a board shows, and starting runs on it: one shared snapshot per board, and the caps on runs.

Why a shared snapshot: a board open on 30 screens while 30 runs train must not be rebuilt 30 times a second.
`Boards.snapshot` builds one `BoardSnapshot` per board per `SNAPSHOT_SECONDS`, whoever asks first, and hands
the same object to every viewer until it is stale (viewers asking while it is being built wait for it).
A run is read from the job manager while this server holds it, else from what the board kept when it ended,
else (a restart before anyone looked) from the run store.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..boards import BoardError, BoardSpec
from ..limits import (
    MAX_BOARD_RUNS,
    MAX_BOARD_RUNS_PER_STUDENT,
    MAX_LIVE_BOARD_RUNS,
    MAX_LIVE_BOARD_RUNS_PER_OWNER,
)
from ..training import TrainConfig
from .board_store import BoardRunRecord, BoardStore
from .views import DONE_STATUSES

SNAPSHOT_SECONDS = 1.0  # a board's snapshot is rebuilt at most this often, whatever the number of viewers
TOUCH_EVERY = 3600.0  # seconds: a board's "last opened" is written at most this often


@dataclass(frozen=True)
class BoardRun:
    """One run as the board draws it: plain numbers and text, the same for every viewer.

    `owner` is for the page to recognise the viewer's own runs and name their owner for that viewer; it is
    never shown or sent to a browser. `person` numbers the board's owners in the order they first trained
    on it (1, 2, ...), for a run whose owner the viewer may not know by name.
    """

    job_id: str
    owner: str
    person: int
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
        people: dict[str, int] = {}
        runs = []
        for record in records:
            people.setdefault(record.owner, len(people) + 1)
            data = self._run_data(board, record)
            run = BoardRun(
                job_id=record.job_id,
                owner=record.owner,
                person=people[record.owner],
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
            return _from_view(record, view, str(getattr(job.worker, "node_id", "") or ""))
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
        value_indexes: Sequence[int],
        submit: Callable[[TrainConfig], str],
        opener: bool | None = None,
    ) -> list[str]:
        """Train one run per value in `value_indexes` for `owner`, within the caps; returns the new job ids.

        `submit(config)` hands a run's settings to the job manager and returns its job id. `opener`: the
        caller opened the board (or teaches its class), so the per-student caps do not apply (default: `owner`
        is the board's opener). Each run's seed
        is the preset's plus the number of runs that value already has, so a value's first run uses the
        preset's seed (values compared at equal seeds) and repeats spread.
        """
        if not value_indexes or any(not 0 <= i < len(board.values) for i in value_indexes):
            raise BoardError("error.boards.bad_value", value=str(list(value_indexes))[:40])
        opener = owner == board.owner if opener is None else opener
        with self._start:
            self._check_caps(board, owner, len(value_indexes), opener)
            started = []
            for index in value_indexes:
                seed = int(board.base.get("seed", 0)) + self.store.run_count(board.id, value_index=index)
                config = board.config(index, seed)
                config.validate()
                job_id = submit(config)
                self.store.add_run(BoardRunRecord(job_id, board.id, owner, index, seed, time.time()))
                with self._lock:
                    self._live[job_id] = owner
                started.append(job_id)
        self.invalidate(board.id)
        return started

    def _check_caps(self, board: BoardSpec, owner: str, n: int, opener: bool) -> None:
        if self.store.run_count(board.id) + n > MAX_BOARD_RUNS:
            raise BoardError("error.boards.runs_full", n=MAX_BOARD_RUNS)
        if not opener and self.store.run_count(board.id, owner=owner) + n > MAX_BOARD_RUNS_PER_STUDENT:
            raise BoardError("error.boards.student_full", n=MAX_BOARD_RUNS_PER_STUDENT)
        mine = self.live_runs(owner)
        if not opener and any(r.board_id == board.id for r in mine):
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
