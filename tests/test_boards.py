"""The experiment board's model: checked definitions, who is given which value, caps, persistence, snapshots."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from testkit import wait_until

from lm_core import boards, limits
from lm_core.boards import BoardError, BoardSpec, new_board, normalise_values
from lm_core.corpus import Corpus
from lm_core.errors import ConfigError, localized
from lm_core.serve import board_runs, board_store
from lm_core.serve.board_runs import Boards, BoardSnapshot
from lm_core.serve.board_store import BoardRunRecord, BoardStore
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

SONGCI = {"source": "songci", "subset": "xin", "max_chars": 2000}
TINY = TrainConfig(model="gru", hidden=16, num_steps=8, batch_size=4, lr=0.01, optimizer="adam", epochs=3, seed=7)


def _board(owner: str = "teacher", values=(0.001, 0.01, 0.1, 1.0), setting: str = "lr", **kw) -> BoardSpec:
    return new_board(owner, setting, values, kw.pop("base", TINY), kw.pop("corpus", SONGCI), **kw)


# -- definitions -------------------------------------------------------------------------------------------------


def test_values_are_checked_deduplicated_and_put_in_order() -> None:
    assert normalise_values("lr", [1, 0.01, 0.1, 0.01]) == (0.01, 0.1, 1.0)
    assert normalise_values("clip", [1.0, None, 0.01]) == (None, 0.01, 1.0)
    assert normalise_values("model", ["lstm", "rnn", "gru"]) == ("rnn", "gru", "lstm")
    assert normalise_values("hidden", [64, 8]) == (8, 64)
    with pytest.raises(BoardError) as few:
        normalise_values("lr", [0.1, 0.1])
    assert "two" in str(few.value) and "两个" in localized(few.value, "zh")
    with pytest.raises(BoardError) as many:
        normalise_values("hidden", range(1, limits.MAX_BOARD_VALUES + 2))
    assert str(limits.MAX_BOARD_VALUES) in str(many.value)
    for setting, bad in [("hidden", 8.5), ("hidden", True), ("lr", "0.1"), ("model", "transformer"), ("lr", None)]:
        with pytest.raises(BoardError):
            normalise_values(setting, [bad, 16 if setting == "hidden" else 0.5])
    with pytest.raises(BoardError):
        normalise_values("optimizer", ["sgd", "adam"])  # not a setting a board varies


def test_a_board_refuses_a_value_that_cannot_train_and_what_it_cannot_share() -> None:
    with pytest.raises(ConfigError):
        _board(setting="hidden", values=(16, 100_000))  # beyond the engine's hidden-unit limit
    with pytest.raises(BoardError):
        _board(corpus={"source": "upload", "max_chars": None})  # an upload cannot be rebuilt from a link
    with pytest.raises(BoardError):
        _board(corpus={"source": "songci", "subset": "../etc", "max_chars": None})
    with pytest.raises(BoardError) as long_title:
        _board(title="x" * (limits.MAX_BOARD_TITLE + 1))
    assert str(limits.MAX_BOARD_TITLE) in str(long_title.value)
    with pytest.raises(BoardError):
        _board(base=TrainConfig(**{**TINY.to_dict(), "epochs": limits.MAX_BOARD_EPOCHS + 1}))


def test_a_run_gets_the_value_and_everything_else_from_the_preset() -> None:
    board = _board(setting="clip", values=(None, 0.1))
    assert board.config(0).clip is None and board.config(1).clip == 0.1
    assert board.config(1, seed=9).seed == 9 and board.config(1).hidden == TINY.hidden
    assert board.config(0).patience == 0  # every run trains all its epochs


# -- seats -------------------------------------------------------------------------------------------------------


def test_each_visitor_is_given_the_next_value_and_keeps_it() -> None:
    store = BoardStore()
    board = _board()
    store.create(board)
    given = [store.claim_seat(board, f"s{i}") for i in range(6)]
    assert given == [0, 1, 2, 3, 0, 1]
    assert store.claim_seat(board, "s2") == 2  # the same visitor again: the same value
    store.move_seat(board, "s2", 3)
    assert store.seat(board.id, "s2") == 3 and store.seat_counts(board) == [2, 2, 0, 2]
    assert store.claim_seat(board, "s6") == 2  # the value nobody has now
    with pytest.raises(BoardError):
        store.move_seat(board, "s2", 4)


def test_visitors_opening_the_link_at_once_get_different_values(tmp_path: Path) -> None:
    board = _board()
    BoardStore(tmp_path).create(board)
    stores = [BoardStore(tmp_path) for _ in range(2)]  # two servers sharing the folder (Ray), threads in each
    given: list[int] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        given.append(stores[i % 2].claim_seat(board, f"student{i}"))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(given) == [0, 0, 1, 1, 2, 2, 3, 3]


# -- caps ----------------------------------------------------------------------------------------------------------


def test_boards_are_capped_per_owner_per_class_and_server_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    store = BoardStore()
    for _ in range(limits.MAX_BOARDS_PER_OWNER):
        store.create(_board("alice"))
    with pytest.raises(BoardError) as mine:
        store.create(_board("alice"))
    assert str(limits.MAX_BOARDS_PER_OWNER) in str(mine.value) and "每个浏览器" in localized(mine.value, "zh")
    for _ in range(limits.MAX_BOARDS_PER_CLASS):
        store.create(_board("teacher", class_id="3A"))
    with pytest.raises(BoardError) as full_class:
        store.create(_board("teacher", class_id="3A"))
    assert str(limits.MAX_BOARDS_PER_CLASS) in str(full_class.value)
    store.create(_board("teacher", class_id="3B"))  # another class has its own boards

    monkeypatch.setattr(board_store, "MAX_BOARDS_ALONE_TOTAL", limits.MAX_BOARDS_PER_OWNER + 2)
    store.create(_board("bob"))
    store.create(_board("carol"))
    with pytest.raises(BoardError) as server:  # new browsers are free: the server-wide cap holds anyway
        store.create(_board("dave"))
    assert str(limits.MAX_BOARDS_PER_OWNER + 2) in str(server.value)
    oldest = store.boards("bob")[0]
    store.touch(oldest.id, now=time.time() - (limits.BOARD_IDLE_DAYS + 1) * 86400)
    store.create(_board("dave"))  # bob's board nobody opened for a month made room
    assert store.board(oldest.id) is None and len(store.boards("dave")) == 1


class _Job:
    def __init__(self, done: bool = False) -> None:
        self.done = done


class _Jobs:
    """A job manager stand-in whose jobs stay queued until `finish`."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, _Job]] = {}

    def submit(self, owner: str) -> str:
        job_id = f"{len(self.jobs):012x}"
        self.jobs[job_id] = (owner, _Job())
        return job_id

    def get(self, job_id: str | None, owner: str):
        found = self.jobs.get(job_id or "")
        return found[1] if found and found[0] == owner else None

    def finish_all(self) -> None:
        for _, job in self.jobs.values():
            job.done = True


def test_runs_are_capped_per_board_per_student_and_live(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _Jobs()
    service = Boards(BoardStore(), jobs)
    board = _board("teacher")
    service.store.create(board)

    def start(owner: str, *values: int) -> list[str]:
        return service.start(board, owner, list(values), lambda cfg: jobs.submit(owner))

    start("ann", 0)
    with pytest.raises(BoardError) as one_live:  # a student trains one run of a board at a time
        start("ann", 1)
    assert "already" in str(one_live.value)
    jobs.finish_all()
    for _ in range(limits.MAX_BOARD_RUNS_PER_STUDENT - 1):
        start("ann", 1)
        jobs.finish_all()
    with pytest.raises(BoardError) as student:
        start("ann", 2)
    assert str(limits.MAX_BOARD_RUNS_PER_STUDENT) in str(student.value)

    ids = start("teacher", 0, 1, 2, 3)  # the board's opener runs every value at once
    assert len(ids) == 4 and service.live_count() == 4
    with pytest.raises(BoardError) as sweep:  # ... but one browser queues at most one sweep's worth
        start("teacher", *range(4), *range(4))
    assert str(limits.MAX_LIVE_BOARD_RUNS_PER_OWNER) in str(sweep.value)

    monkeypatch.setattr(board_runs, "MAX_LIVE_BOARD_RUNS", 5)
    with pytest.raises(BoardError) as server:  # server-wide, whoever asks
        start("zoe", 0)
        start("yan", 1)
    assert "5" in str(server.value) and service.live_count() == 5
    jobs.finish_all()
    monkeypatch.setattr(board_runs, "MAX_BOARD_RUNS", service.store.run_count(board.id) + 1)
    start("yan", 1)
    with pytest.raises(BoardError) as board_full:
        start("xi", 2)
    assert str(service.store.run_count(board.id)) in str(board_full.value)


def test_seeds_start_at_the_presets_and_spread_over_repeats() -> None:
    jobs = _Jobs()
    service = Boards(BoardStore(), jobs)
    board = _board("teacher")
    service.store.create(board)
    seeds = []
    for _ in range(2):
        service.start(board, "teacher", [0, 1], lambda cfg: (seeds.append(cfg.seed), jobs.submit("teacher"))[1])
        jobs.finish_all()
    assert seeds == [TINY.seed, TINY.seed, TINY.seed + 1, TINY.seed + 1]


# -- persistence and snapshots ---------------------------------------------------------------------------------------


def test_a_board_and_its_runs_survive_a_restart(tmp_path: Path) -> None:
    store = BoardStore(tmp_path)
    board = _board("teacher", title="Learning rate <b>3A</b>")
    store.create(board)
    store.claim_seat(board, "ann")
    store.add_run(BoardRunRecord("a" * 12, board.id, "ann", 0, 7, time.time()))
    store.save_result("a" * 12, {"status": "finished", "planned": 3, "epochs": [1], "perplexity": [9.5]})
    store.close()

    again = BoardStore(tmp_path)
    assert again.board(board.id) == board
    assert again.seat(board.id, "ann") == 0
    (run,) = again.runs(board.id)
    assert run.owner == "ann" and run.result["perplexity"] == [9.5]
    assert again.board("not-an-id") is None and again.board("0" * 16) is None


def test_a_damaged_boards_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / board_store.DB_NAME).write_bytes(b"not a database at all" * 100)
    store = BoardStore(tmp_path)
    assert "moved aside" in store.notice and store.boards("anyone") == []
    assert any(p.name.startswith(f"{board_store.DB_NAME}.corrupt-") for p in tmp_path.iterdir())


def _trainer(corpus: Corpus, cfg: TrainConfig) -> Trainer:
    return Trainer(corpus, cfg)


def test_a_snapshot_shows_every_run_live_and_is_shared_by_all_viewers(manager: JobManager, tiny_corpus: Corpus) -> None:
    service = Boards(BoardStore(), manager, ttl=60.0)
    board = _board("teacher", setting="hidden", values=(8, 16, 32, 48))
    service.store.create(board)

    def submit(config: TrainConfig) -> str:
        trainers = [_trainer(tiny_corpus, config)]
        return manager.submit("teacher", trainers, prefixes=("春风",), sample_every=1, kind=boards.KIND).id

    ids = service.start(board, "teacher", [0, 1, 2, 3], submit)
    snap = service.snapshot(board)
    assert [r.job_id for r in snap.runs] == ids and [r.value_index for r in snap.runs] == [0, 1, 2, 3]
    assert all(r.owner == "teacher" and r.person == 1 for r in snap.runs)

    builds = service.builds
    got: list[BoardSnapshot] = []
    barrier = threading.Barrier(30)

    def view() -> None:
        barrier.wait()
        got.append(service.snapshot(board))

    threads = [threading.Thread(target=view) for _ in range(30)]
    service.invalidate(board.id)
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert service.builds == builds + 1 and len({id(s) for s in got}) == 1  # 30 viewers, one build

    service.ttl = 0.0
    assert wait_until(lambda: all(r.done for r in service.snapshot(board).runs))
    final = service.snapshot(board)
    for run in final.runs:
        assert run.status == "finished" and run.epochs == (1, 2, 3) and run.best is not None
        assert run.seconds_per_epoch > 0 and run.greedy and run.prefix == "春风"
    assert final.token != snap.token
    assert all(r.result and r.result["epochs"] == [1, 2, 3] for r in service.store.runs(board.id))


def test_after_a_restart_the_board_draws_from_what_it_kept_or_from_the_run_store(
    tmp_path: Path, job_manager, tiny_corpus: Corpus
) -> None:
    run_store = RunStore(tmp_path)
    mgr = job_manager(store=run_store)
    store = BoardStore(tmp_path)
    service = Boards(store, mgr, run_store, ttl=0.0)
    board = _board("ann", values=(0.01, 0.1), base=TrainConfig(**{**TINY.to_dict(), "epochs": 2}))
    store.create(board)

    def submit(config: TrainConfig) -> str:
        return mgr.submit("ann", [_trainer(tiny_corpus, config)], kind=boards.KIND).id

    (kept,) = service.start(board, "ann", [0], submit)
    assert wait_until(lambda: service.snapshot(board).runs[0].done)
    (unseen,) = service.start(board, "ann", [1], submit)
    assert wait_until(lambda: mgr.get(unseen, "ann").done)  # it ended while no board was drawn

    after = Boards(BoardStore(tmp_path), jobs=None, run_store=run_store)  # a new server: no jobs in memory
    runs = {r.job_id: r for r in after.snapshot(board).runs}
    assert runs[kept].status == "finished" and runs[kept].epochs == (1, 2)
    assert runs[unseen].status == "finished" and len(runs[unseen].perplexity) == 2
    alone = Boards(BoardStore(tmp_path), jobs=None, run_store=None)  # and without the run store either
    assert {r.job_id: r.status for r in alone.snapshot(board).runs}[kept] == "finished"
