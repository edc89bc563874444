"""Training in worker processes: the same events and controls as a thread, a killed worker is failed and resumable."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from testkit import TIMEOUT, check_released_weights, seconds_until, thread_curve

from lm_core.corpus import Corpus
from lm_core.serve import driver, process_pool
from lm_core.serve.job import Job
from lm_core.serve.manager import JobManager
from lm_core.serve.run import Run
from lm_core.serve.store import RunStore
from lm_core.serve.worker import spec_of
from lm_core.training import Control, TrainConfig, Trainer

CONTROL_BOUND = 5.0  # seconds; the target is 0.5 s (load_bench.py prints the figure); this bound survives a starved box
# Validation on, for early stopping: an overfitting run (a tiny corpus, a big step) stops well before 40 epochs.
VALIDATED = TrainConfig(
    model="gru", hidden=16, num_steps=8, batch_size=4, lr=0.01, optimizer="adam", clip=1.0, epochs=8, val_fraction=0.2
)
CONFIG = {"model": "scratch-gru", "hidden": 16, "num_steps": 8, "batch_size": 4, "lr": 1.0, "clip": 1.0, "seed": 3}


def _trainer(corpus: Corpus, epochs: int) -> Trainer:
    return Trainer(corpus, TrainConfig(**CONFIG, epochs=epochs))


@pytest.fixture()
def manager(job_manager: Callable[..., JobManager], tmp_path: Path) -> JobManager:
    return job_manager(store=RunStore(tmp_path), backend="process")


def test_a_worker_process_trains_and_reports_like_a_thread(manager: JobManager, tiny_corpus: Corpus) -> None:
    job = manager.submit("alice", [_trainer(tiny_corpus, 2)], ["GRU"], prefixes=("春风",), sample_every=1)
    job.thread.join(TIMEOUT)
    view = manager.view(job)
    assert view.status == "finished" and view.epoch == 2
    run = view.runs[0]
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert len(run.step_norms) == sum(h["steps"] for h in run.history)
    assert set(run.samples) == {1, 2} and run.samples[2]["春风"].startswith("春风")
    assert len(job.checkpoint(0).history) == 2
    assert job.worker.pid != os.getpid() and job.worker in process_pool.idle_workers()  # kept for reuse
    record = manager.store.run(f"{job.id}-0", "alice")
    assert record.status == "finished" and record.epoch == 2


def test_the_worker_curve_equals_the_thread_curve(manager: JobManager, tiny_corpus: Corpus) -> None:
    job = manager.submit("alice", [_trainer(tiny_corpus, 3)])
    job.thread.join(TIMEOUT)
    assert [h["perplexity"] for h in manager.view(job).runs[0].history] == thread_curve(_trainer(tiny_corpus, 3))


def test_a_released_job_shows_the_weights_its_worker_trained(manager: JobManager, tiny_corpus: Corpus) -> None:
    check_released_weights(manager, _trainer(tiny_corpus, 2), "春风", elsewhere=True)


def test_pause_step_resume_stop_reach_the_worker(manager: JobManager, tiny_corpus: Corpus) -> None:
    job = manager.submit("alice", [_trainer(tiny_corpus, 100_000)])
    seconds_until(lambda: job.status == "running" and manager.view(job).epoch >= 1)
    job.pause()
    paused_in = seconds_until(lambda: job.status == "paused")  # the worker itself reported that it blocked
    assert paused_in < CONTROL_BOUND
    epoch = manager.view(job).epoch
    job.step_epoch()
    seconds_until(lambda: manager.view(job).epoch == epoch + 1 and job.status == "paused")
    job.resume()
    seconds_until(lambda: job.status == "running")
    job.stop()
    stopped_in = seconds_until(lambda: manager.view(job).status == "stopped")  # the worker ended the run itself
    assert stopped_in < CONTROL_BOUND
    job.thread.join(TIMEOUT)
    assert job.worker in process_pool.idle_workers()  # it ended cleanly: it waits for the next run


def test_a_killed_worker_fails_the_run_which_resumes_from_its_checkpoint(
    manager: JobManager, tiny_corpus: Corpus
) -> None:
    job = manager.submit("alice", [_trainer(tiny_corpus, 100_000)], ["GRU"])
    seconds_until(lambda: manager.view(job).epoch >= 2)
    os.kill(job.worker.pid, signal.SIGKILL)
    job.thread.join(TIMEOUT)
    view = manager.view(job)
    assert view.status == "failed" and "stopped unexpectedly" in view.message and "My runs" in view.message
    record = manager.store.run(f"{job.id}-0", "alice")
    assert record.status == "failed" and record.epoch >= 2
    again = manager.resume_stored(job.id, "alice")
    assert again is not None and again.id == job.id
    seconds_until(lambda: manager.view(again).epoch >= record.epoch + 1)
    again.stop()
    again.thread.join(TIMEOUT)
    resumed = [h["perplexity"] for h in manager.store.history(f"{job.id}-0")]
    assert thread_curve(_trainer(tiny_corpus, len(resumed))) == resumed


def test_the_app_trains_in_worker_processes_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Train page with the app's default backend: the run is a worker process's, and the page draws it."""
    from apptest_helpers import app_page, plotly_specs, use_tiny_settings, wait_for_job

    from lab_ui import session

    monkeypatch.setenv("RNN_LAB_DATA", str(tmp_path))
    with app_page("pages/train.py", backend=session.DEFAULT_BACKEND) as at:
        assert session.manager().backend == "process"
        use_tiny_settings(at, "train", model="rnn")
        at.button(key="train:start").click().run()
        job = wait_for_job(at, "train", timeout=TIMEOUT)
        assert job.worker is not None and job.worker.pid != os.getpid()
        at.run()
        assert not at.exception
        view = session.manager().view(job)
        assert view.status == "finished", view.message
        traces = [t for spec in plotly_specs(at) for t in spec["data"] if t.get("mode", "").startswith("lines")]
        assert traces and len(traces[0]["x"]) == len(view.runs[0].history) == view.planned_epochs


def test_a_worker_does_not_rerun_the_servers_main_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit puts the app's script in `sys.modules["__main__"]`; "spawn" would run it again in every worker."""
    import multiprocessing as mp
    import sys
    import types

    from lm_core.serve.process_pool import CONTEXT, start_without_main

    marker = tmp_path / "imported"
    script = tmp_path / "app_script.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('x')\n", encoding="utf-8")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    fake_main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    ctx = mp.get_context(CONTEXT)

    plain = ctx.Process(target=time.sleep, args=(0,))
    plain.start()  # what multiprocessing does by itself: the child runs the script
    plain.join(TIMEOUT)
    assert marker.exists()
    marker.unlink()

    guarded = ctx.Process(target=time.sleep, args=(0,))
    start_without_main(guarded)
    guarded.join(TIMEOUT)
    assert guarded.exitcode == 0
    assert not marker.exists()
    assert sys.modules["__main__"] is fake_main  # the server's entry is put back


def test_a_paused_worker_lends_its_slot_to_a_queued_run(
    tmp_path: Path, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot: pausing A lets queued B train; resuming A queues it until B stops; then A trains on."""
    monkeypatch.setattr(driver, "LEND_AFTER_SECONDS", 0.5)  # a pause that lasts: A lends its slot
    mgr = JobManager(max_running=1, store=RunStore(tmp_path), backend="process")
    try:
        a = mgr.submit("alice", [_trainer(tiny_corpus, 100_000)])
        seconds_until(lambda: a.status == "running" and mgr.view(a).epoch >= 1)
        b = mgr.submit("bob", [_trainer(tiny_corpus, 100_000)])
        seconds_until(lambda: mgr.queue_position(b) == 1)
        assert b.status == "queued" and mgr.view(b).epoch == 0
        a.pause()
        seconds_until(lambda: b.status == "running" and mgr.view(b).epoch >= 1)  # B got A's slot
        assert mgr.running_count() == 1
        a.resume()
        seconds_until(
            lambda: a.status == "queued" and mgr.queue_position(a) == 1
        )  # A waits; it does not take a 2nd core
        epoch_a = mgr.view(a).epoch
        b.stop()
        b.thread.join(TIMEOUT)
        seconds_until(lambda: a.status == "running" and mgr.view(a).epoch > epoch_a)
        a.stop()
        a.thread.join(TIMEOUT)
        assert mgr.view(a).status == "stopped" and mgr.view(b).status == "stopped"
    finally:
        mgr.shutdown()


def test_a_short_pause_keeps_the_slot_and_starts_no_worker_for_the_next_run(
    tmp_path: Path, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pause and Resume before the grace ends: A trains on in its place, B waits, no second process starts."""
    monkeypatch.setattr(driver, "LEND_AFTER_SECONDS", 3600.0)  # every pause here is short
    mgr = JobManager(max_running=1, store=RunStore(tmp_path), backend="process")
    try:
        a = mgr.submit("alice", [_trainer(tiny_corpus, 100_000)])
        seconds_until(lambda: a.status == "running" and mgr.view(a).epoch >= 1)
        b = mgr.submit("bob", [_trainer(tiny_corpus, 100_000)])
        seconds_until(lambda: mgr.queue_position(b) == 1)
        for _ in range(2):
            a.pause()
            seconds_until(lambda: a.status == "paused")  # the worker's own word: it gave its slot back
            epoch_a = mgr.view(a).epoch
            a.resume()
            seconds_until(lambda epoch_a=epoch_a: a.status == "running" and mgr.view(a).epoch > epoch_a)
            assert b.status == "queued" and mgr.queue_position(b) == 1 and b.worker is None
        a.stop()
        seconds_until(lambda: b.status == "running")  # A's end gives B the slot as before
        b.stop()
        for job in (a, b):
            job.thread.join(TIMEOUT)
    finally:
        mgr.shutdown()


def test_a_finished_worker_trains_the_next_run_to_the_same_curve(manager: JobManager, tiny_corpus: Corpus) -> None:
    """A reused worker: no second spawn, and nothing of the first run leaks into the second's numbers."""
    first = manager.submit("alice", [_trainer(tiny_corpus, 2)])
    first.thread.join(TIMEOUT)
    assert first.worker in process_pool.idle_workers()
    second = manager.submit("bob", [Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "seed": 11}, epochs=3))])
    second.thread.join(TIMEOUT)
    assert second.worker.pid == first.worker.pid
    first.stop()  # a late click on the first run's page must not reach the worker's next job
    third = manager.submit("carol", [_trainer(tiny_corpus, 2)])
    third.thread.join(TIMEOUT)
    assert third.worker.pid == first.worker.pid and manager.view(third).status == "finished"
    expected = thread_curve(Trainer(tiny_corpus, TrainConfig(**{**CONFIG, "seed": 11}, epochs=3)))
    assert [h["perplexity"] for h in manager.view(second).runs[0].history] == expected
    assert [h["perplexity"] for h in manager.view(third).runs[0].history] == [
        h["perplexity"] for h in manager.view(first).runs[0].history
    ]


# -- early stopping and the validation split in a worker -----------------------------------------------------------


def test_early_stopping_in_a_worker_process_keeps_the_best_weights(tiny_corpus: Corpus, tmp_path) -> None:
    """A real run that overfits (a tiny corpus, a big step size): the worker stops it and the web process gets
    the best-by-validation weights, with their epoch, and the run store records the end."""
    from lm_core.training import evaluate_perplexity

    mgr = JobManager(store=RunStore(tmp_path), backend="process")
    try:
        cfg = replace(VALIDATED, hidden=64, lr=0.05, epochs=40, patience=2)
        job = mgr.submit("me", [Trainer(tiny_corpus, cfg)], ["gru"], kind="train")
        assert job.thread is not None
        job.thread.join(TIMEOUT * 2)
        view = job.snapshot()
        assert view.status == "finished", view.message
        history = view.runs[0].history
        vals = [h["val_perplexity"] for h in history]
        best = min(range(len(vals)), key=vals.__getitem__) + 1
        assert len(history) < 40, "this tiny corpus should overfit well before 40 epochs"
        assert view.runs[0].stopped_early and len(history) == best + 2
        published = job.checkpoint(0)
        assert published.best_epoch == best
        model = published.build_model().eval()
        val_ids = Trainer(tiny_corpus, cfg).val_ids
        assert evaluate_perplexity(model, val_ids, cfg.num_steps, cfg.batch_size) == pytest.approx(
            vals[best - 1], rel=1e-4
        )
        (record,) = mgr.store.runs("me")
        assert record.status == "finished" and record.stopped_early and record.message.startswith("Stopped early")
    finally:
        mgr.shutdown()


def test_a_worker_splits_validation_at_the_same_whole_ci_as_the_web_process(tiny_corpus: Corpus) -> None:
    """The worker gets the text with its line ends between documents, so its split is the same."""
    job = Job("me", [Run.starting_from(Trainer(tiny_corpus, VALIDATED), "gru")], Control())
    (run,) = spec_of(job).runs
    rebuilt = Corpus.from_text(run.corpus_text, run.corpus_name, max_chars=None)
    assert rebuilt.split_point(0.2) == tiny_corpus.split_point(0.2)
    assert rebuilt.text == tiny_corpus.text and rebuilt.idx_to_char == tiny_corpus.idx_to_char
    flat = Corpus.from_text(tiny_corpus.text, run.corpus_name, max_chars=None)  # the text alone has lost them
    assert flat.split_point(0.2) != tiny_corpus.split_point(0.2)
