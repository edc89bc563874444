"""Early stopping inside app jobs: a job ends a run whose patience ran out, keeps its best weights
and says which epoch they came from; in a lockstep comparison the other run trains on."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from testkit import TIMEOUT

from lm_core import training
from lm_core.corpus import Corpus
from lm_core.serve.events import RunEnded
from lm_core.serve.job import Job
from lm_core.serve.manager import JobManager
from lm_core.serve.run import Run
from lm_core.serve.worker import spec_of
from lm_core.training import Control, EndEvent, TrainConfig, Trainer

CFG = TrainConfig(
    model="gru", hidden=16, num_steps=8, batch_size=4, lr=0.01, optimizer="adam", clip=1.0, epochs=8, val_fraction=0.2
)


def _scripted(monkeypatch: pytest.MonkeyPatch, per_run: dict[int, list[float]]) -> None:
    """Validation perplexities by trainer (its `id`'s order of first call), so the best epoch is known."""
    seen: dict[int, int] = {}
    order: list[int] = []

    def fake(model, ids, num_steps, batch_size):  # the real one's signature
        key = id(model)
        if key not in seen:
            seen[key] = 0
            order.append(key)
        run = order.index(key)
        value = per_run[run][seen[key]]
        seen[key] += 1
        return value

    monkeypatch.setattr(training, "evaluate_perplexity", fake)


def _run(manager: JobManager, trainers: list[Trainer]) -> Job:
    job = manager.submit("me", trainers, [t.config.model for t in trainers], kind="train")
    assert job.thread is not None
    job.thread.join(TIMEOUT)
    assert job.done, job.status
    return job


def test_a_job_stops_a_run_whose_patience_ran_out_and_publishes_its_best_weights(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted(monkeypatch, {0: [9.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]})
    trainer = Trainer(tiny_corpus, replace(CFG, patience=2))
    best_seen: dict[str, torch.Tensor] = {}
    real_epoch = trainer.run_epoch

    def spy():  # records epoch 2's weights, the best by the script above
        yield from real_epoch()
        if trainer.epoch == 2:
            best_seen.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    trainer.run_epoch = spy
    job = _run(manager, [trainer])
    view = job.snapshot()
    assert view.status == "finished"
    assert trainer.epoch == 4  # best at 2, then 2 epochs without a better one: not the 8 planned
    assert view.runs[0].stopped_early and view.runs[0].end is not None and view.runs[0].end.best_epoch == 2
    assert "no better validation perplexity for 2 epochs; best from epoch 2" in view.message
    published = job.checkpoint(0)
    assert published.best_epoch == 2 and len(published.history) == 4
    assert all(torch.equal(published.model_state[k], best_seen[k]) for k in best_seen)
    assert not all(torch.equal(published.model_state[k], v) for k, v in trainer.model.state_dict().items())


def test_in_lockstep_the_other_run_trains_on(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted(monkeypatch, {0: [5.0, 6.0, 7.0, 8.0, 9.0, 9.0], 1: [9.0, 8.0, 7.0, 6.0, 5.0, 4.0]})
    small = Trainer(tiny_corpus, replace(CFG, patience=2, epochs=6))
    large = Trainer(tiny_corpus, replace(CFG, patience=2, epochs=6, seed=1))
    job = _run(manager, [small, large])
    view = job.snapshot()
    assert [len(r.history) for r in view.runs] == [3, 6]
    assert view.runs[0].stopped_early and not view.runs[1].stopped_early
    assert view.status == "finished" and view.epoch == 6  # progress follows the run still training
    assert job.checkpoint(0).best_epoch == 1 and job.checkpoint(1).best_epoch == 6


def test_without_patience_a_job_keeps_the_last_weights(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted(monkeypatch, {0: [5.0, 6.0, 7.0]})
    trainer = Trainer(tiny_corpus, replace(CFG, epochs=3))
    job = _run(manager, [trainer])
    assert len(trainer.history) == 3 and job.checkpoint(0).best_epoch is None
    assert all(torch.equal(job.checkpoint(0).model_state[k], v) for k, v in trainer.model.state_dict().items())


def test_a_worker_reports_an_early_stop_as_it_happens(tiny_corpus: Corpus) -> None:
    """A worker's `RunEnded` is folded into the web process's job before the job finishes."""
    job = Job("me", [Run.starting_from(Trainer(tiny_corpus, replace(CFG, patience=2)), "gru")], Control())
    end = EndEvent("finished", "Stopped early: ...", 3, best_epoch=1, early_stop=True)
    job.apply(RunEnded(0, end))
    (run,) = job.snapshot().runs
    assert run.end == end and run.stopped_early and not job.done


def test_my_runs_says_a_run_stopped_early_not_that_it_finished_its_epochs() -> None:
    from lab_ui import jobs_ui  # outside a session the UI language is the default, 中文

    early = jobs_ui.ended_text("finished", 3, 3, "Stopped early: no better validation perplexity ...", early=True)
    assert "提前停止" in early and "3" in early
    assert "提前停止" not in jobs_ui.ended_text("finished", 8, 8, "Finished 8 epochs.")
    assert "提前停止" not in jobs_ui.ended_text("finished", 8, 8, "Stopped early (a text is not a status)")


def test_early_stopping_in_a_worker_process_keeps_the_best_weights(tiny_corpus: Corpus, tmp_path) -> None:
    """A real run that overfits (a tiny corpus, a big step size): the worker stops it and the web process gets
    the best-by-validation weights, with their epoch, and the run store records the end."""
    from lm_core.serve.store import RunStore
    from lm_core.training import evaluate_perplexity

    mgr = JobManager(store=RunStore(tmp_path), backend="process")
    try:
        cfg = replace(CFG, hidden=64, lr=0.05, epochs=40, patience=2)
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
    job = Job("me", [Run.starting_from(Trainer(tiny_corpus, CFG), "gru")], Control())
    (run,) = spec_of(job).runs
    rebuilt = Corpus.from_text(run.corpus_text, run.corpus_name, max_chars=None)
    assert rebuilt.split_point(0.2) == tiny_corpus.split_point(0.2)
    assert rebuilt.text == tiny_corpus.text and rebuilt.idx_to_char == tiny_corpus.idx_to_char
    flat = Corpus.from_text(tiny_corpus.text, run.corpus_name, max_chars=None)  # the text alone has lost them
    assert flat.split_point(0.2) != tiny_corpus.split_point(0.2)
