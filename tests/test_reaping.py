"""A job whose page stopped polling (a closed tab) is stopped by the manager's own reaper thread."""

from __future__ import annotations

from lm_core.corpus import Corpus
from lm_core.serve.manager import JobManager
from lm_core.serve.retention import Retention
from lm_core.training import TrainConfig, Trainer


def test_unwatched_job_is_reaped_without_any_visitor(tiny_corpus: Corpus) -> None:
    manager = JobManager(retention=Retention(reap_after=0.5))
    try:
        cfg = TrainConfig(model="rnn", hidden=8, num_steps=5, batch_size=4, epochs=100_000, optimizer="adam", lr=0.01)
        job = manager.submit("owner-a", [Trainer(tiny_corpus, cfg)])
        job.thread.join(timeout=30)  # nobody calls get()/touch(): only the reaper can end it
        assert not job.thread.is_alive(), "the unwatched job was never reaped"
        assert manager.view(job).status == "stopped"
        assert job.epochs_done(0) < 100_000
    finally:
        manager.shutdown()


def test_watched_job_is_not_reaped(tiny_corpus: Corpus) -> None:
    """A job polled within reap_after survives the reaper; the same job unpolled for longer is stopped.

    The test owns the clock: it calls reap(now=...) itself and the manager's own reaper thread waits
    far longer than the test runs, so a loaded machine cannot turn a slow poll into a reap.
    """
    manager = JobManager(retention=Retention(reap_after=3600.0))
    try:
        cfg = TrainConfig(model="rnn", hidden=8, num_steps=5, batch_size=4, epochs=100_000, optimizer="adam", lr=0.01)
        job = manager.submit("owner-a", [Trainer(tiny_corpus, cfg)])
        for _ in range(5):  # five polls, each just inside the timeout after the previous one
            assert manager.get(job.id, "owner-a") is job  # the page's poll
            seen = job.last_seen
            assert manager.reap(now=seen + manager.retention.reap_after - 1.0) == []
            assert not job.done and manager.view(job).status in ("running", "queued")
        assert manager.reap(now=job.last_seen + manager.retention.reap_after + 1.0) == [job.id]  # the tab went away
        job.thread.join(timeout=60)
        assert not job.thread.is_alive()
        assert manager.view(job).status == "stopped"
    finally:
        manager.shutdown()
