"""The run store (lm_core.serve: store, database, recorder): schema, corrupt/foreign files moved aside, locked
retries, quota, ownership, one server; and runs that survive their server and resume to the same curve."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from testkit import TIMEOUT, learned, thread_curve, thread_history, wait_until

from lm_core.corpus import Corpus
from lm_core.errors import LabError
from lm_core.serve import database
from lm_core.serve import store as runstore
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunRecord, RunStore, StoreError
from lm_core.training import TrainConfig, Trainer


def _record(run_id: str, owner: str = "alice", status: str = "running", created: float | None = None) -> RunRecord:
    now = time.time() if created is None else created
    return RunRecord(
        id=run_id,
        job_id=run_id,
        run_index=0,
        owner=owner,
        kind="train",
        label="RNN",
        config={"model": "rnn", "epochs": 3},
        corpus_name="tiny",
        corpus_hash="abc",
        status=status,
        message="",
        epoch=0,
        planned=3,
        best_perplexity=None,
        created=now,
        updated=now,
        checkpoint_bytes=0,
        group_labels=["RNN"],
    )


def test_runs_epochs_and_checkpoints_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.add_run(_record("r1"))
    store.record_epoch("r1", {"epoch": 1, "perplexity": 9.5}, b"weights-1")
    store.record_epoch("r1", {"epoch": 2, "perplexity": 7.25}, b"weights-22")
    store.set_status("r1", "finished", "done")
    rec = store.run("r1", "alice")
    assert rec is not None and rec.status == "finished" and rec.epoch == 2 and rec.best_perplexity == 7.25
    assert rec.checkpoint_bytes == len(b"weights-22")
    assert store.checkpoint_path("r1").read_bytes() == b"weights-22"
    assert [h["epoch"] for h in store.history("r1")] == [1, 2]
    digest = store.save_corpus("春风吹过")
    assert store.corpus_text(digest) == "春风吹过"
    store.close()
    again = RunStore(tmp_path)  # a restarted server reads the same runs
    assert [r.id for r in again.runs("alice")] == ["r1"]
    again.close()


def test_another_owner_never_sees_or_deletes_a_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.add_run(_record("r1", owner="alice"))
    assert store.runs("bob") == [] and store.run("r1", "bob") is None
    assert not store.delete("r1", "bob")
    assert store.run("r1", "alice") is not None
    store.close()


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, "foreign"])
def test_corrupt_or_foreign_database_is_moved_aside(tmp_path: Path, content: bytes | str) -> None:
    db = tmp_path / runstore.DB_NAME
    if content == "foreign":
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE invoices (n INTEGER)")
        conn.commit()
        conn.close()
    else:
        db.write_bytes(content)
    store = RunStore(tmp_path)
    assert "moved aside" in store.notice
    assert list(tmp_path.glob(f"{runstore.DB_NAME}.corrupt-*"))
    store.add_run(_record("r1"))
    assert store.run("r1", "alice") is not None
    store.close()


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / runstore.DB_NAME)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    conn.close()
    assert meta == {"app": database.APP_ID, "schema_version": str(database.SCHEMA_VERSION)}


def test_a_locked_database_is_retried_not_raised(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.add_run(_record("r1"))
    other = sqlite3.connect(tmp_path / runstore.DB_NAME, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(0.5, other.rollback)
    releaser.start()
    store.set_status("r1", "paused")  # waits for the other process's transaction, then writes
    releaser.join()
    other.close()
    assert store.run("r1", "alice").status == "paused" and store.problem == ""
    store.close()


def test_a_database_locked_for_good_degrades_without_raising(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    store = RunStore(tmp_path)
    store.add_run(_record("r1"))
    other = sqlite3.connect(tmp_path / runstore.DB_NAME)
    other.execute("BEGIN EXCLUSIVE")
    try:
        store.set_status("r1", "paused")  # never raises
        assert "locked" in store.problem
    finally:
        other.rollback()
        other.close()
    store.set_status("r1", "paused")
    assert store.problem == "" and store.run("r1", "alice").status == "paused"
    store.close()


def test_a_full_disk_keeps_the_old_checkpoint_and_says_so(tmp_path: Path, monkeypatch) -> None:
    store = RunStore(tmp_path)
    store.add_run(_record("r1"))
    store.record_epoch("r1", {"epoch": 1, "perplexity": 9.0}, b"good")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    store.record_epoch("r1", {"epoch": 2, "perplexity": 8.0}, b"never written")
    assert store.problem == "disk full"
    assert store.checkpoint_path("r1").read_bytes() == b"good"  # nothing corrupt
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))
    store.close()


def test_quota_evicts_the_oldest_finished_runs_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runstore, "MAX_RUNS_PER_OWNER", 3)
    store = RunStore(tmp_path)
    store.add_run(_record("old-live", status="running", created=1.0))
    store.add_run(_record("old-done", status="finished", created=2.0))
    store.add_run(_record("mid-done", status="stopped", created=3.0))
    evicted = store.add_run(_record("new", status="running", created=4.0))
    assert evicted == ["RNN"]
    assert {r.id for r in store.runs("alice")} == {"old-live", "mid-done", "new"}
    store.close()


def test_live_runs_without_a_worker_become_interrupted(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.add_run(_record("r1", status="running"))
    store.record_epoch("r1", {"epoch": 2, "perplexity": 5.0}, None)
    store.add_run(_record("r2", status="finished"))
    assert store.mark_interrupted() == ["r1"]
    rec = store.run("r1", "alice")
    assert rec.status == "interrupted" and "epoch 2" in rec.message
    store.close()


def test_a_second_server_on_the_same_folder_refuses(tmp_path: Path) -> None:
    first = RunStore(tmp_path, exclusive=True)
    with pytest.raises(StoreError, match="Another server"):
        RunStore(tmp_path, exclusive=True)
    first.close()
    RunStore(tmp_path, exclusive=True).close()  # free again once the first one is gone


def test_an_unusable_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot be created"):
        RunStore(blocker / "data")


# -- runs survive their server: kill -9, interrupted, resumed to the same curve ------------------------------------
# Runs in the store survive their server: kill -9 mid-run, a new manager sees "interrupted", Resume gives the same curve.


REPO = Path(__file__).resolve().parents[1]

CONFIG = {
    "model": "scratch-gru",
    "hidden": 16,
    "num_steps": 8,
    "batch_size": 4,
    "lr": 1.0,
    "clip": 1.0,
    "epochs": 4,
    "seed": 3,
}

SERVER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from lm_core.corpus import Corpus
    from lm_core.serve.manager import JobManager
    from lm_core.serve.store import RunStore
    from lm_core.training import TrainConfig, Trainer
    corpus = Corpus.from_text(open({text!r}, encoding="utf-8").read(), name="tiny", max_chars=None)
    manager = JobManager(store=RunStore({data!r}, exclusive=True))
    job = manager.submit("alice", [Trainer(corpus, TrainConfig(**{config!r}))], ["GRU"], kind="train")
    print(job.id, flush=True)
    while True:
        manager.get(job.id, "alice")  # the page's poll keeps it from being reaped
        time.sleep(0.2)
    """
)


def _stored_runs(db: Path) -> int:
    """Rows in the runs table of `db`, read-only (0 while the file or the table does not exist yet)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_then_resume_continues_the_same_curve(tmp_path: Path, tiny_corpus: Corpus) -> None:
    text = tmp_path / "tiny.txt"
    text.write_text(tiny_corpus.text, encoding="utf-8")
    data = tmp_path / "data"
    script = SERVER.format(repo=str(REPO), text=str(text), data=str(data), config=CONFIG | {"epochs": 400})
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = server.stdout.readline().strip()
        assert job_id, "the server did not start a job"
        # Open the watcher's store only once the server's has written its first run: a store opened while the
        # other is still creating the schema could find it half made.
        assert wait_until(lambda: _stored_runs(data / "runs.sqlite") > 0)
        watcher = RunStore(data)
        assert wait_until(
            lambda: (watcher.run(f"{job_id}-0", "alice") or None) and watcher.run(f"{job_id}-0", "alice").epoch >= 2
        )
        os.kill(server.pid, signal.SIGKILL)  # no clean-up of any kind
        server.wait(TIMEOUT)
        watcher.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    manager = JobManager(store=RunStore(data, exclusive=True))  # the restarted server
    try:
        record = manager.store.run(f"{job_id}-0", "alice")
        assert record.status == "interrupted" and f"epoch {record.epoch}" in record.message
        assert f"{job_id}-0" in manager.interrupted
        assert manager.store.runs("bob") == [] and manager.resume_stored(job_id, "bob") is None
        killed_at = record.epoch
        job = manager.resume_stored(job_id, "alice", extra_epochs=0)
        assert job is not None and job.id == job_id
        job.stop()  # 400 epochs is long: stop after a few more and compare the curve so far
        job.thread.join(TIMEOUT)
        resumed = manager.store.history(f"{job_id}-0")
    finally:
        manager.shutdown()
    assert len(resumed) >= killed_at
    straight = thread_curve(Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "epochs": len(resumed)})))
    assert [h["perplexity"] for h in resumed] == straight  # exactly: same seed, weights, optimiser and RNG state


def test_resume_in_process_gives_the_identical_curve(tmp_path: Path, tiny_corpus: Corpus) -> None:
    """2 epochs, then "Continue for 2 more" from the store = 4 epochs straight, bit for bit."""
    manager = JobManager(store=RunStore(tmp_path))
    try:
        job = manager.submit("alice", [Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "epochs": 2}))], ["GRU"])
        job.thread.join(TIMEOUT)
        again = manager.resume_stored(job.id, "alice", extra_epochs=2)
        again.thread.join(TIMEOUT)
        view = manager.view(again)
        record = manager.store.run(f"{job.id}-0", "alice")
    finally:
        manager.shutdown()
    assert view.status == "finished" and record.status == "finished" and record.epoch == 4
    assert [h["perplexity"] for h in view.runs[0].history] == thread_curve(Trainer(tiny_corpus, TrainConfig(**CONFIG)))


def test_resume_with_a_validation_share_keeps_its_split_and_its_curve(tmp_path: Path, tiny_corpus: Corpus) -> None:
    """The store must give back the corpus with its document starts: the validation cut falls at a whole line,
    and without them a resumed run would train and validate on other characters than before."""
    config = TrainConfig(**{**CONFIG, "epochs": 2, "val_fraction": 0.2})
    manager = JobManager(store=RunStore(tmp_path))
    try:
        job = manager.submit("alice", [Trainer(tiny_corpus, config)], ["GRU"])
        job.thread.join(TIMEOUT)
        again = manager.resume_stored(job.id, "alice", extra_epochs=2)
        assert again.train_chars(0) == job.train_chars(0) == tiny_corpus.split_point(0.2)
        again.thread.join(TIMEOUT)
        resumed = manager.view(again).runs[0].history
    finally:
        manager.shutdown()
    straight = thread_history(Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "epochs": 4, "val_fraction": 0.2})))
    assert len(resumed) == 4 and learned(resumed) == learned(straight)


def test_a_run_whose_corpus_file_is_gone_says_so(tmp_path: Path, tiny_corpus: Corpus) -> None:
    manager = JobManager(store=RunStore(tmp_path))
    try:
        job = manager.submit("alice", [Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "epochs": 1}))], ["GRU"])
        job.thread.join(TIMEOUT)
        for f in (tmp_path / "corpora").iterdir():
            f.unlink()
        with pytest.raises(LabError, match="missing"):
            manager.resume_stored(job.id, "alice", extra_epochs=1)
    finally:
        manager.shutdown()


def test_an_unwritable_store_keeps_training_in_memory(tmp_path: Path, tiny_corpus: Corpus, monkeypatch) -> None:
    """Disk full: the run still finishes, the store says why nothing was saved, the old checkpoint stays whole."""
    store = RunStore(tmp_path)
    manager = JobManager(store=store)
    try:
        job = manager.submit("alice", [Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "epochs": 1}))], ["GRU"])
        job.thread.join(TIMEOUT)
        good = store.checkpoint_path(f"{job.id}-0").read_bytes()

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr("os.fsync", full)
        again = manager.resume_stored(job.id, "alice", extra_epochs=2)
        again.thread.join(TIMEOUT)
        assert manager.view(again).status == "finished" and manager.view(again).epoch == 3
        assert store.problem == "disk full"
        assert store.checkpoint_path(f"{job.id}-0").read_bytes() == good
    finally:
        manager.shutdown()
