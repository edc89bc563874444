"""The run store when something is gone or refused: a missing checkpoint, corpus files past their runs, a store
that becomes unwritable while the server runs. Nothing is lost or rewritten without a word."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from testkit import TIMEOUT

from lm_core.corpus import Corpus
from lm_core.errors import LabError
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

CONFIG = {"model": "scratch-gru", "hidden": 16, "num_steps": 8, "batch_size": 4, "lr": 1.0, "clip": 1.0, "seed": 3}


def _train(manager: JobManager, corpus: Corpus, epochs: int = 2, owner: str = "alice") -> str:
    job = manager.submit(owner, [Trainer(corpus, TrainConfig(**CONFIG, epochs=epochs))], ["GRU"])
    job.thread.join(TIMEOUT)
    assert manager.view(job).status == "finished"
    return job.id


def test_continue_without_its_checkpoint_is_refused_and_keeps_the_stored_epochs(
    tmp_path: Path, tiny_corpus: Corpus
) -> None:
    manager = JobManager(store=RunStore(tmp_path))
    try:
        job_id = _train(manager, tiny_corpus)
        store = manager.store
        before = store.history(f"{job_id}-0")
        store.checkpoint_path(f"{job_id}-0").unlink()
        with pytest.raises(LabError) as refused:
            manager.resume_stored(job_id, "alice", extra_epochs=3)
        assert refused.value.key == "error.runs.checkpoint_missing"
        assert "GRU" in str(refused.value) and "\n" not in str(refused.value)
        record = store.run(f"{job_id}-0", "alice")
        assert (record.status, record.epoch, record.planned) == ("finished", 2, 2)
        assert store.history(f"{job_id}-0") == before
    finally:
        manager.shutdown()


def _corpus(seed: int) -> Corpus:
    """A distinct text per seed, long enough to train one tiny epoch."""
    lines = [f"第{seed}首 春风吹过小河 月光照着山坡 {i}" for i in range(60)]
    return Corpus.from_text("\n".join(lines), name=f"text {seed}", max_chars=None)


def _corpus_files(folder: Path) -> set[str]:
    return {p.name for p in (folder / "corpora").glob("*.txt")}


def test_a_corpus_file_goes_with_the_last_run_that_uses_it(tmp_path: Path) -> None:
    manager = JobManager(store=RunStore(tmp_path))
    store = manager.store
    try:
        shared_a = _train(manager, _corpus(1), epochs=1)
        shared_b = _train(manager, _corpus(1), epochs=1)
        own = _train(manager, _corpus(2), epochs=1)
        other_owner = _train(manager, _corpus(3), epochs=1, owner="bob")
        assert len(_corpus_files(tmp_path)) == 3
        by_job = {r.job_id: r.corpus_hash for r in store.runs("alice")}
        assert store.delete(f"{own}-0", "alice")
        assert f"{by_job[own]}.txt" not in _corpus_files(tmp_path)  # its only run is gone
        assert store.delete(f"{shared_a}-0", "alice")
        assert f"{by_job[shared_b]}.txt" in _corpus_files(tmp_path)  # another run still uses it
        assert store.corpus_text(by_job[shared_b]) is not None
        assert store.delete(f"{shared_b}-0", "alice")
        assert len(_corpus_files(tmp_path)) == 1  # bob's
        assert store.run(f"{other_owner}-0", "bob") is not None
    finally:
        manager.shutdown()


def test_stored_corpora_count_in_the_owners_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs stopped before their first epoch have no checkpoint, but their text is on disk all the same."""
    from lm_core.serve import store as runstore

    manager = JobManager(store=RunStore(tmp_path))
    store = manager.store
    try:
        first = _train(manager, _corpus(1), epochs=1)
        text_bytes = (tmp_path / "corpora" / f"{store.runs('alice')[0].corpus_hash}.txt").stat().st_size
        ckpt_bytes = store.run(f"{first}-0", "alice").checkpoint_bytes
        # Room for the first run's checkpoint and text, but not for a second text beside them.
        monkeypatch.setattr(runstore, "MAX_BYTES_PER_OWNER", ckpt_bytes + text_bytes + text_bytes // 2)
        second = _train(manager, _corpus(2), epochs=1)
        assert [r.job_id for r in store.runs("alice")] == [second]
        assert manager.evicted["alice"] == ["GRU"]
        assert len(_corpus_files(tmp_path)) == 1
    finally:
        manager.shutdown()


def test_a_server_alone_on_its_folder_deletes_texts_no_run_uses(tmp_path: Path, tiny_corpus: Corpus) -> None:
    """Texts left behind by runs deleted before texts went with them; a text a run uses stays."""
    manager = JobManager(store=RunStore(tmp_path))
    try:
        _train(manager, tiny_corpus, epochs=1)
    finally:
        manager.shutdown()
    used = _corpus_files(tmp_path)
    (tmp_path / "corpora" / f"{'0' * 64}.txt").write_text("left behind", encoding="utf-8")
    RunStore(tmp_path, shared=True).close()  # sharing the folder: another server may be adding a run
    assert len(_corpus_files(tmp_path)) == 2
    RunStore(tmp_path, exclusive=True).close()
    assert _corpus_files(tmp_path) == used


def _refuse_new_rows(store: RunStore) -> None:
    """The store's disk stops taking new data while the server runs (a folder made read-only, immutable files):
    every write that adds a row fails, while an update with nothing to change still goes through, as on disk."""
    store.db.conn.set_authorizer(lambda action, *_: sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_INSERT else 0)


def test_a_store_that_stops_taking_runs_says_so_and_keeps_saying_it(tmp_path: Path, tiny_corpus: Corpus) -> None:
    manager = JobManager(store=RunStore(tmp_path))
    store = manager.store
    try:
        first = _train(manager, tiny_corpus, epochs=1)
        assert store.problem == ""
        _refuse_new_rows(store)
        lost = _train(manager, _corpus(5), epochs=2)  # trains on in memory, to the end
        assert [r.job_id for r in store.runs("alice")] == [first]  # it never reached the database ...
        assert store.problem  # ... and the store says so
        store.set_status(f"{first}-0", "finished", "still writable")  # a write that works does not clear it
        assert store.run(f"{first}-0", "alice").message == "still writable"
        assert store.problem
        assert manager.get(lost, "alice").epochs_done(0) == 2
    finally:
        manager.shutdown()
