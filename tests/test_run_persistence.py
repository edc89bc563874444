"""Runs in the store survive their server: kill -9 mid-run, a new manager sees "interrupted", Resume gives the same curve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from testkit import TIMEOUT, learned, thread_curve, thread_history, wait_until

from lm_core.corpus import Corpus
from lm_core.errors import LabError
from lm_core.serve.manager import JobManager
from lm_core.serve.store import RunStore
from lm_core.training import TrainConfig, Trainer

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


def test_kill_9_then_resume_continues_the_same_curve(tmp_path: Path, tiny_corpus: Corpus) -> None:
    text = tmp_path / "tiny.txt"
    text.write_text(tiny_corpus.text, encoding="utf-8")
    data = tmp_path / "data"
    script = SERVER.format(repo=str(REPO), text=str(text), data=str(data), config=CONFIG | {"epochs": 400})
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = server.stdout.readline().strip()
        assert job_id, "the server did not start a job"
        watcher = None
        assert wait_until(lambda: (data / "runs.sqlite").exists())
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
