"""A job whose page stopped polling (a closed tab) is stopped by the manager's own reaper thread."""

from __future__ import annotations

from lm_core.corpus import Corpus
from lm_core.jobs import JobManager
from lm_core.training import TrainConfig, Trainer


def test_unwatched_job_is_reaped_without_any_visitor(tiny_corpus: Corpus) -> None:
    manager = JobManager(reap_after=0.5)
    try:
        cfg = TrainConfig(model="rnn", hidden=8, num_steps=5, batch_size=4, epochs=100_000, optimizer="adam", lr=0.01)
        job = manager.submit("owner-a", [Trainer(tiny_corpus, cfg)])
        job.thread.join(timeout=30)  # nobody calls get()/touch(): only the reaper can end it
        assert not job.thread.is_alive(), "the unwatched job was never reaped"
        assert manager.view(job).status == "stopped"
        assert job.trainers[0].epoch < 100_000
    finally:
        manager.shutdown()


def test_watched_job_is_not_reaped(tiny_corpus: Corpus) -> None:
    manager = JobManager(reap_after=0.5)
    try:
        cfg = TrainConfig(model="rnn", hidden=8, num_steps=5, batch_size=4, epochs=150, optimizer="adam", lr=0.01)
        job = manager.submit("owner-a", [Trainer(tiny_corpus, cfg)])
        while job.thread.is_alive():
            assert manager.get(job.id, "owner-a") is job  # the page's poll
            job.thread.join(timeout=0.1)
        view = manager.view(job)
        assert view.status == "finished"
        assert view.elapsed > 2 * manager.reap_after  # it outlived the timeout, so only the polls kept it alive
    finally:
        manager.shutdown()
