"""Jobs and their manager (lm_core.serve: job, manager, lockstep, retention, the thread backend): running to the
end, ownership, the CPU-slot queue, lockstep, published weights (also after a release), reaping, early stopping,
and the bounds on finished jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from testkit import TIMEOUT, check_released_weights, reachable, wait_until

from lm_core import training
from lm_core.corpus import Corpus
from lm_core.sampling import minibatches_per_epoch
from lm_core.serve.events import RunEnded
from lm_core.serve.job import Job
from lm_core.serve.manager import JobManager
from lm_core.serve.retention import Retention
from lm_core.serve.run import Run
from lm_core.serve.store import RunStore
from lm_core.serve.views import JobView
from lm_core.training import Control, EndEvent, TrainConfig, Trainer


def _config(**overrides: Any) -> TrainConfig:
    cfg = TrainConfig(model="scratch-rnn", hidden=8, num_steps=8, batch_size=8, lr=1.0, clip=1.0, epochs=2)
    return replace(cfg, **overrides)


def _trainer(corpus: Corpus, **overrides: Any) -> Trainer:
    return Trainer(corpus, _config(**overrides))


def join(job: Job) -> None:
    assert job.thread is not None
    job.thread.join(TIMEOUT)
    assert not job.thread.is_alive(), f"job {job.id} did not end"


def _equal_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture()
def single_slot(job_manager: Callable[..., JobManager]) -> JobManager:
    return job_manager(max_running=1)


def test_job_trains_to_the_end(manager: JobManager, tiny_corpus: Corpus) -> None:
    """A 2-epoch job finishes with a 2-epoch history, every step's gradient norm and greedy samples."""
    job = manager.submit("alice", [_trainer(tiny_corpus)], prefixes=("春风",), sample_every=1)
    join(job)
    view = manager.view(job)
    assert isinstance(view, JobView)
    assert view.status == "finished" and view.done and not view.active
    assert view.epoch == view.planned_epochs == 2
    assert view.queue_position == 0 and view.eta_seconds is None
    assert view.tokens_per_s is not None and view.tokens_per_s > 0
    (run,) = view.runs
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert run.status == "finished" and run.label == "scratch-rnn"
    assert len(run.step_norms) == len(run.step_clipped) == 2 * minibatches_per_epoch(len(tiny_corpus), 8, 8, "random")
    assert set(run.samples) == {1, 2}
    assert all(s["春风"].startswith("春风") and len(s["春风"]) == 52 for s in run.samples.values())
    assert manager.running_count() == 0


def test_only_the_owner_sees_a_job(manager: JobManager, tiny_corpus: Corpus) -> None:
    """get() returns the job for its owner only; another owner, no id or an unknown id get None."""
    job = manager.submit("alice", [_trainer(tiny_corpus)])
    assert manager.get(job.id, "alice") is job
    assert manager.get(job.id, "bob") is None
    assert manager.get(None, "alice") is None
    assert manager.get("no-such-job", "alice") is None
    join(job)


def test_latest_finds_the_owners_newest_job_of_a_kind(manager: JobManager, tiny_corpus: Corpus) -> None:
    """latest(owner, kind) returns that owner's most recent job of that kind, never someone else's."""
    first = manager.submit("alice", [_trainer(tiny_corpus)], kind="train")
    second = manager.submit("alice", [_trainer(tiny_corpus)], kind="train")
    other_kind = manager.submit("alice", [_trainer(tiny_corpus)], kind="compare")
    bobs = manager.submit("bob", [_trainer(tiny_corpus)], kind="train")
    for job in (first, second, other_kind, bobs):
        join(job)
    second.created = max(first.created, second.created) + 1  # creation times can tie at clock resolution
    assert manager.latest("alice", "train") is second
    assert manager.latest("alice", "compare") is other_kind
    assert manager.latest("bob", "train") is bobs
    assert manager.latest("carol", "train") is None
    assert manager.latest("bob", "compare") is None


def _running_and_queued(mgr: JobManager, corpus: Corpus, second_owner: str) -> tuple[Job, Job]:
    """Alice's endless job holding the only slot, and `second_owner`'s 2-epoch job queued behind it."""
    first = mgr.submit("alice", [_trainer(corpus, epochs=100_000)])
    assert wait_until(lambda: mgr.view(first).status == "running")
    second = mgr.submit(second_owner, [_trainer(corpus)])
    assert wait_until(lambda: mgr.queue_position(second) == 1)
    return first, second


def test_a_second_job_queues_until_the_slot_is_free(single_slot: JobManager, tiny_corpus: Corpus) -> None:
    """With max_running=1 a second job waits at queue position 1 and starts once the first is stopped."""
    first, second = _running_and_queued(single_slot, tiny_corpus, "bob")
    view = single_slot.view(second)
    assert view.status == "queued" and view.queue_position == 1 and view.epoch == 0
    assert single_slot.running_count() == 1
    assert single_slot.view(first).status == "running"

    first.stop()
    join(first)
    assert single_slot.view(first).status == "stopped"
    join(second)
    view = single_slot.view(second)
    assert view.status == "finished" and view.epoch == 2 and view.queue_position == 0


def test_a_paused_job_lends_its_slot_to_a_queued_job(single_slot: JobManager, tiny_corpus: Corpus) -> None:
    """Pausing gives the CPU slot away (Control.on_block): the queued job runs; the paused one queues to resume."""
    first, second = _running_and_queued(single_slot, tiny_corpus, "bob")

    first.pause()
    join(second)
    assert single_slot.view(second).status == "finished"
    view = single_slot.view(first)
    assert view.status == "paused"
    epochs_while_paused = view.epoch

    first.resume()
    assert wait_until(lambda: single_slot.view(first).epoch > epochs_while_paused)
    assert single_slot.view(first).status == "running"
    first.stop()
    join(first)
    assert single_slot.view(first).status == "stopped"


def test_stopping_a_queued_job_ends_it_before_it_starts(single_slot: JobManager, tiny_corpus: Corpus) -> None:
    """A job stopped while waiting for a slot ends 'stopped' without training; the running job goes on."""
    first, second = _running_and_queued(single_slot, tiny_corpus, "alice")
    second.stop()
    join(second)
    view = single_slot.view(second)
    assert view.status == "stopped" and view.epoch == 0
    assert single_slot.view(first).status == "running"


def test_two_runs_train_in_lockstep(manager: JobManager, tiny_corpus: Corpus) -> None:
    """After each step_epoch, both runs stand at the same epoch, and each published checkpoint is that epoch's model."""
    trainers = [
        _trainer(tiny_corpus, epochs=10),
        _trainer(tiny_corpus, model="gru", optimizer="adam", lr=1e-2, epochs=10),
    ]
    job = manager.submit("alice", trainers, labels=["rnn", "gru"])
    job.pause()
    assert wait_until(lambda: manager.view(job).status == "paused")
    for _ in range(3):
        before = min(len(r.history) for r in manager.view(job).runs)
        job.step_epoch()

        def advanced(before: int = before) -> bool:
            view = manager.view(job)
            return view.status == "paused" and min(len(r.history) for r in view.runs) > before

        assert wait_until(advanced), "the job did not pause after one more epoch"
        view = manager.view(job)
        lengths = [len(r.history) for r in view.runs]
        assert lengths[0] == lengths[1] == before + 1 == view.epoch
        for i, trainer in enumerate(trainers):
            ckpt = job.checkpoint(i)
            assert len(ckpt.history) == view.epoch
            assert _equal_state(ckpt.model_state, trainer.model.state_dict())
    assert [r.label for r in manager.view(job).runs] == ["rnn", "gru"]
    job.stop()
    join(job)
    assert manager.view(job).status == "stopped"


def test_published_checkpoint_is_a_copy_of_the_last_epoch(manager: JobManager, tiny_corpus: Corpus) -> None:
    """checkpoint(run) holds the weights after the last epoch, as a copy the worker does not touch."""
    trainer = _trainer(tiny_corpus)
    job = manager.submit("alice", [trainer])
    join(job)
    ckpt = job.checkpoint(0)
    assert len(ckpt.history) == 2
    assert _equal_state(ckpt.model_state, trainer.model.state_dict())
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)
    assert not _equal_state(ckpt.model_state, trainer.model.state_dict())


@pytest.mark.parametrize("patience", [0, 1], ids=["last-weights", "early-stopped-best-weights"])
def test_a_released_job_shows_the_weights_it_trained(
    job_manager: Callable[..., JobManager],
    tiny_corpus: Corpus,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    patience: int,
) -> None:
    """Released after its finish, a job still shows its last epoch's weights, or with early stopping its best
    epoch's (validation scripted: best at epoch 2, worse at 3, so patience 1 ends the run there)."""
    scripted = iter([5.0, 4.0, 6.0])
    monkeypatch.setattr(training, "evaluate_perplexity", lambda *args: next(scripted))
    trainer = _trainer(tiny_corpus, epochs=3 if patience == 0 else 5, val_fraction=0.2, patience=patience)
    manager = job_manager(store=RunStore(tmp_path))
    check_released_weights(manager, trainer, "春风", elsewhere=False)
    assert manager.store.runs("alice")[0].epoch == 3


def test_reap_stops_a_job_nobody_polls(manager: JobManager, tiny_corpus: Corpus) -> None:
    """reap() stops running jobs unseen for reap_after seconds and forgets finished ones later."""
    job = manager.submit("alice", [_trainer(tiny_corpus, epochs=100_000)])
    assert wait_until(lambda: manager.view(job).status == "running")
    assert manager.reap() == []
    assert manager.reap(now=time.time() + 10_000) == [job.id]
    join(job)
    assert manager.view(job).status == "stopped"
    assert manager.get(job.id, "alice") is job  # still kept for its page
    assert manager.reap(now=time.time() + manager.retention.forget_after + 10) == [job.id]
    assert manager.get(job.id, "alice") is None


def test_a_diverging_run_does_not_stop_the_other(manager: JobManager, tiny_corpus: Corpus) -> None:
    """When the second run diverges (lr 1e4, no clipping) the first still finishes; the run view says 'diverged'."""
    good = _trainer(tiny_corpus, epochs=2)
    wild = _trainer(tiny_corpus, hidden=32, lr=1e4, clip=None, epochs=2)
    job = manager.submit("alice", [good, wild], labels=["calm", "wild"])
    join(job)
    view = manager.view(job)
    assert view.status == "finished", view.message
    calm, wild_run = view.runs
    assert calm.status == "finished" and len(calm.history) == 2
    assert wild_run.status == "diverged" and not wild_run.alive and calm.alive
    assert "epoch" in wild_run.message and "step" in wild_run.message
    assert wild_run.end is not None and wild_run.end.status == "diverged" and wild_run.end.loss is not None
    assert view.epoch == 2, "progress must follow the run still training, not the diverged one"
    assert "wild" in view.message
    assert all(torch.isfinite(t).all() for t in job.checkpoint(1).model_state.values())


def test_a_single_diverging_run_makes_the_job_diverged(manager: JobManager, tiny_corpus: Corpus) -> None:
    """A job with one run that diverges ends with status 'diverged'."""
    job = manager.submit("alice", [_trainer(tiny_corpus, hidden=32, lr=1e4, clip=None)])
    join(job)
    view = manager.view(job)
    assert view.status == "diverged" and view.runs[0].status == "diverged"


def test_a_crash_in_training_is_reported_as_error(
    manager: JobManager, tiny_corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected exception in the worker ends the job as 'error' with the exception in the message."""
    trainer = _trainer(tiny_corpus)

    def broken_epoch() -> Iterator[Any]:
        raise RuntimeError("simulated failure")
        yield  # pragma: no cover

    trainer.run_epoch = broken_epoch  # type: ignore[method-assign]
    job = manager.submit("alice", [trainer])
    join(job)
    view = manager.view(job)
    assert view.status == "error" and "simulated failure" in view.message
    assert manager.running_count() == 0


def test_shutdown_stops_every_thread(tiny_corpus: Corpus) -> None:
    """shutdown() stops running, paused and queued jobs and joins their threads."""
    mgr = JobManager(max_running=1)
    try:
        jobs = [mgr.submit("alice", [_trainer(tiny_corpus, epochs=100_000)]) for _ in range(3)]
        jobs[0].pause()
    finally:
        mgr.shutdown()
    assert all(job.thread is not None and not job.thread.is_alive() for job in jobs)
    assert all(mgr.view(job).status == "stopped" for job in jobs)
    alive = {t.name for t in threading.enumerate()}
    assert not alive & {f"train-{job.id}" for job in jobs}


# -- reaping: a closed tab's job is stopped by the manager itself --------------------------------------------------
# A job whose page stopped polling (a closed tab) is stopped by the manager's own reaper thread.


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


# -- early stopping: the run ends, its best weights are kept and said ----------------------------------------------
# Early stopping inside app jobs: a job ends a run whose patience ran out, keeps its best weights
# and says which epoch they came from; in a lockstep comparison the other run trains on.


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


# -- finished jobs are bounded and give back what only Continue needs ----------------------------------------------


def _finished_job(manager, owner: str, corpus: Corpus, kind: str = "train"):
    cfg = TrainConfig(model="gru", hidden=8, num_steps=5, batch_size=4, epochs=1, optimizer="adam", lr=0.01)
    job = manager.submit(owner, [Trainer(corpus, cfg)], kind=kind)
    job.thread.join(60)
    assert job.done, job.status
    return job


def test_finished_jobs_are_capped_per_owner_and_in_total(tiny_corpus: Corpus) -> None:
    from lm_core.serve.manager import JobManager
    from lm_core.serve.retention import Retention

    manager = JobManager(retention=Retention(per_owner=2, total=3))
    try:
        alice = [_finished_job(manager, "alice", tiny_corpus) for _ in range(4)]
        manager.reap()
        assert [manager.get(j.id, "alice") is not None for j in alice] == [False, False, True, True]
        bob = [_finished_job(manager, "bob", tiny_corpus, kind) for kind in ("train", "sampling")]
        manager.reap()
        kept = [j for j in (*alice, *bob) if manager.get(j.id, j.owner) is not None]
        assert len(kept) == 3 and bob[1] in kept and alice[3] in kept  # the newest of each kind stay
    finally:
        manager.shutdown()


def test_an_unwatched_finished_job_releases_its_optimiser_but_keeps_its_model(tiny_corpus: Corpus) -> None:
    from lm_core.serve.manager import JobManager
    from lm_core.serve.retention import Retention

    manager = JobManager(retention=Retention(release_after=60.0))
    try:
        job = _finished_job(manager, "alice", tiny_corpus)
        assert job.checkpoint(0).optimizer_state  # Continue would go on with its Adam state
        weights = {k: v.clone() for k, v in job.checkpoint(0).model_state.items()}
        manager.reap(now=time.time() + 30)
        assert not job.released  # watched recently: Continue keeps its Adam state
        manager.reap(now=time.time() + 120)
        assert job.released and job.checkpoint(0).optimizer_state is None
        # no model, no optimiser, no gradients: the published weights are the one copy left
        assert reachable(job, torch.optim.Optimizer) == [] and reachable(job, torch.nn.Module) == []
        published = job.checkpoint(0).model_state
        assert all(torch.equal(published[k], w) for k, w in weights.items())
        assert manager.get(job.id, "alice") is job  # still there for its page and for Generate
    finally:
        manager.shutdown()


def test_beyond_the_servers_cap_a_job_is_refused_before_anything_is_recorded(
    job_manager: Callable[..., JobManager], tiny_corpus: Corpus, tmp_path: Path
) -> None:
    """A new browser identity costs nothing, so the total of live jobs is capped whoever asks; the refusal says
    the lab is full (no job kept, no run stored), and a job that is stopped makes room at once."""
    from lm_core.serve.manager import LabFull

    manager = job_manager(max_running=1, store=RunStore(tmp_path), max_live=2, max_live_per_owner=5)
    first = manager.submit("owner-1", [_trainer(tiny_corpus, epochs=10_000)])
    manager.submit("owner-2", [_trainer(tiny_corpus, epochs=10_000)])  # queued behind the first: it counts too
    with pytest.raises(LabFull) as refused:
        manager.check_room("owner-3")
    assert refused.value.key == "error.jobs.lab_full" and "The lab is full" in str(refused.value)
    with pytest.raises(LabFull):
        manager.submit("owner-3", [_trainer(tiny_corpus, epochs=10_000)])
    assert manager.live_count() == 2 and len(manager.jobs()) == 2
    assert manager.store.runs("owner-3") == []
    first.stop()
    third = manager.submit("owner-3", [_trainer(tiny_corpus, epochs=10_000)])
    assert manager.live_count() == 2 and manager.get(third.id, "owner-3") is third


def test_one_owner_gets_at_most_its_share_and_a_replaced_job_does_not_count(
    job_manager: Callable[..., JobManager], tiny_corpus: Corpus
) -> None:
    from lm_core.serve.manager import LabFull

    manager = job_manager(max_running=1, max_live=10, max_live_per_owner=2)
    jobs = [manager.submit("alice", [_trainer(tiny_corpus, epochs=10_000)]) for _ in range(2)]
    with pytest.raises(LabFull) as refused:
        manager.submit("alice", [_trainer(tiny_corpus, epochs=10_000)])
    assert refused.value.key == "error.jobs.owner_full"
    manager.check_room("alice", replacing=jobs[0].id)  # a page's Train replaces its own run: room for it
    manager.submit("bob", [_trainer(tiny_corpus, epochs=10_000)])  # another owner is not held up
    jobs[0].stop()
    manager.submit("alice", [_trainer(tiny_corpus, epochs=10_000)])


def test_a_sweep_without_room_for_all_its_runs_is_refused_whole(job_manager: Callable[..., JobManager]) -> None:
    """A board's Run all values asks room for every value at once: a sweep of 3 with 2 places left is refused
    before any run starts (never half a board), while one of 2 fits."""
    from lm_core.serve.manager import LabFull

    manager = job_manager(max_running=1, max_live=10, max_live_per_owner=2)
    with pytest.raises(LabFull) as refused:
        manager.check_room("alice", n=3)
    assert refused.value.key == "error.jobs.owner_full"
    manager.check_room("alice", n=2)
    small = job_manager(max_running=1, max_live=2, max_live_per_owner=8)
    with pytest.raises(LabFull) as full:
        small.check_room("alice", n=3)
    assert full.value.key == "error.jobs.lab_full"


def test_finished_jobs_weights_fit_a_byte_budget_optimisers_released_first_then_the_oldest_dropped(
    tiny_corpus: Corpus,
) -> None:
    """A count of finished jobs does not bound memory (one large model is 600 MB with Adam): bytes do."""
    from lm_core.serve.run import tensor_bytes

    manager = JobManager(retention=Retention(per_owner=10, total=10))  # counts never bind here
    try:
        jobs = [_finished_job(manager, owner, tiny_corpus) for owner in ("ann", "ben", "cy")]
        for job in jobs:
            job.checkpoint(0)  # parsed, as a page would: the bytes below are the same for all three
        weights = tensor_bytes(jobs[0].checkpoint(0).model_state)
        with_adam = jobs[0].held_bytes()
        assert with_adam > 2.5 * weights and all(j.held_bytes() == with_adam for j in jobs)  # Adam: two moments

        manager.retention.total_bytes = with_adam + 2.5 * weights  # room for one optimiser state, not two
        manager.reap()  # (the reaper thread may sweep too: the state after is what counts)
        assert [j.released for j in jobs] == [True, True, False]  # the oldest two gave theirs back
        assert all(manager.get(j.id, j.owner) is j for j in jobs)  # ... and all three are still there
        assert sum(j.held_bytes() for j in jobs) <= manager.retention.total_bytes

        manager.retention.total_bytes = 2.5 * weights  # room for two models' weights only
        manager.reap()
        assert manager.get(jobs[0].id, "ann") is None  # every optimiser released was not enough: the oldest went
        assert [manager.get(j.id, j.owner) is j for j in jobs[1:]] == [True, True] and jobs[2].released
    finally:
        manager.shutdown()


def test_a_comparison_that_fits_only_run_by_run_is_refused_before_it_starts(
    manager: JobManager, tiny_corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run passed its own memory check, but one worker holds both: over the budget together, submit refuses
    with the job's message and nothing is started or kept; within it, the same pair trains."""
    from lm_core import memory

    pair = [_trainer(tiny_corpus), _trainer(tiny_corpus, model="scratch-gru")]
    alone = max(t.memory.total for t in pair)
    together = memory.job_total([t.memory for t in pair])
    assert together > alone
    monkeypatch.setenv(memory.ENV, str(together - 1))
    with pytest.raises(memory.RunMemoryError, match="side by side in one worker"):
        manager.submit("alice", pair)
    assert manager.jobs() == [] and manager.running_count() == 0
    monkeypatch.setenv(memory.ENV, str(together))
    join(manager.submit("alice", pair))
