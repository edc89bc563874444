"""Background training jobs and the process-wide manager that owns them.

A `Job` trains one or more `Trainer`s in lockstep (epoch 1 of each, then
epoch 2 of each, ...) in a daemon thread with one torch thread, so two runs
being compared always stand at the same epoch. Its `snapshot()` copies plain
numbers under a lock for any UI to draw; after every epoch it also publishes
the weights as a `Checkpoint`, so other pages can read the model without
touching tensors the worker is updating.

The `JobManager` caps how many jobs train at once (a queued job waits for a
slot and knows its place), checks that a caller owns a job before showing or
controlling it, and reaps jobs whose page stopped polling. Finished jobs are
bounded too (`limits.MAX_FINISHED_PER_OWNER`, `MAX_FINISHED_TOTAL`: the oldest
go first), and one nobody has looked at for `RELEASE_UNWATCHED_AFTER` seconds
gives back its optimiser state and gradients, keeping only its weights.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch

from .checkpoint import Checkpoint, from_own_bytes, from_trainer
from .corpus import Corpus
from .generation import generate
from .limits import MAX_FINISHED_PER_OWNER, MAX_FINISHED_TOTAL, RELEASE_UNWATCHED_AFTER
from .process_backend import SharedControl, prewarm, run_in_process, shutdown_pool
from .run_recorder import Recorder, rebuild_trainers
from .runstore import RunStore
from .training import Control, EndEvent, EpochEvent, StepEvent, Trainer

MAX_STEP_TRACE = 20_000  # per-step gradient norms kept per run
# failed: a worker process died; interrupted: a Ray node or the cluster went away (resumable from the store)
DONE_STATUSES = ("finished", "stopped", "diverged", "error", "failed", "interrupted")


@dataclass
class RunView:
    """What a page needs to draw one run of a job."""

    label: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    step_norms: list[float]
    step_clipped: list[bool]
    status: str
    message: str
    samples: dict[int, dict[str, str]]
    end: EndEvent | None = None  # how the run ended (diverged: epoch + 1 and step failed, with the loss)

    @property
    def alive(self) -> bool:
        """Still part of the comparison (a diverged run stops while the others go on)."""
        return self.status != "diverged"

    @property
    def stopped_early(self) -> bool:
        """Ended by early stopping: finished before its planned epochs, its best-by-validation weights kept."""
        return early_stopped(self.end, len(self.history), self.config.get("epochs", 0))


def early_stopped(end: EndEvent | None, epochs_done: int, planned: int) -> bool:
    """True for a run that patience ended: "finished" before its planned epochs, with a best epoch."""
    return end is not None and end.status == "finished" and end.best_epoch is not None and epochs_done < planned


@dataclass
class JobView:
    job_id: str
    status: str  # queued | running | paused | finished | stopped | diverged | error
    message: str
    queue_position: int  # 0 when not queued
    epoch: int  # epochs completed by every run
    planned_epochs: int
    version: int  # changes whenever a new epoch or status arrives
    elapsed: float
    eta_seconds: float | None
    tokens_per_s: float | None
    runs: list[RunView] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES


class Job:
    def __init__(
        self,
        owner: str,
        trainers: list[Trainer],
        labels: list[str],
        prefixes: tuple[str, ...] = (),
        sample_every: int = 10,
        kind: str = "train",
        job_id: str | None = None,
    ) -> None:
        self.id = job_id or uuid.uuid4().hex[:12]
        self.owner = owner
        self.kind = kind
        self.trainers = trainers
        self.labels = labels
        self.prefixes = prefixes
        self.sample_every = max(1, sample_every)
        self.control = Control()
        for t in trainers:
            t.control = self.control
        self.created = time.time()
        self.last_seen = time.time()
        self.status = "queued"
        self.message = ""
        self._lock = threading.Lock()
        self._version = 0
        self._started: float | None = None
        self._finished: float | None = None
        self._norms: list[list[float]] = [[] for _ in trainers]
        self._clipped: list[list[bool]] = [[] for _ in trainers]
        self._samples: list[dict[int, dict[str, str]]] = [{} for _ in trainers]
        self._ends: list[EndEvent | None] = [None for _ in trainers]
        self._published: list[Checkpoint] = [from_trainer(t) for t in trainers]
        self.released = False  # optimiser state and gradients given back (see `release`)
        self.thread: threading.Thread | None = None
        self.recorder: Recorder | None = None  # writes epochs, checkpoints and statuses to the run store

    # -- what a page may read instead of the trainers (a worker process will not share them) --------
    def corpus(self, run: int = 0) -> Corpus:
        return self.trainers[run].corpus

    def corpus_text(self, run: int = 0) -> str:
        return self.trainers[run].corpus.text

    def epochs_done(self, run: int = 0) -> int:
        return self.checkpoint_epochs(run)

    def checkpoint_epochs(self, run: int = 0) -> int:
        with self._lock:
            return len(self._published[run].history)

    def train_chars(self, run: int = 0) -> int:
        """Characters of the training split (fixed when the job was built)."""
        return len(self.trainers[run].train_ids)

    def planned_epochs(self, run: int = 0) -> int:
        return self.trainers[run].config.epochs

    # -- control, callable from any thread -------------------------------------------
    def pause(self) -> None:
        if not self.done:
            self.control.pause()
            self._bump()

    def resume(self) -> None:
        self.control.resume()
        self._bump()

    def step_epoch(self) -> None:
        if not self.done:
            self.control.step_epoch()
            self._bump()

    def stop(self) -> None:
        self.control.stop()
        self._bump()

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    def _bump(self) -> None:
        with self._lock:
            self._version += 1

    def touch(self) -> None:
        self.last_seen = time.time()

    @property
    def version(self) -> int:
        """Changes whenever a page would draw the job differently (an epoch, a status, a control pressed).

        The same number as `snapshot().version`, without copying the histories: a poll compares it.
        """
        return self._version

    # -- the worker ---------------------------------------------------------------------
    def run(self, acquire, release) -> None:
        """Body of the worker thread; `acquire`/`release` take and give back a CPU slot."""
        torch.set_num_threads(1)  # per OS thread: this is the worker's own setting
        self.control.on_block = lambda: (release(), self._set_status("paused"))
        self.control.on_unblock = lambda: (self._set_status("queued"), acquire(self), self._set_status("running"))
        try:
            acquire(self)
            if self.control.stopped:
                self._finish("stopped", "Stopped before it started.")
                return
            self._started = time.time()
            self._set_status("running")
            self._loop()
        except Exception as exc:  # noqa: BLE001 -- the UI shows this instead of the thread dying silently
            self._finish("error", f"Training failed: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            release()

    def _loop(self) -> None:
        planned = max(t.config.epochs for t in self.trainers)
        while True:
            live = [i for i, t in enumerate(self.trainers) if self._ends[i] is None and t.epoch < t.config.epochs]
            if not live:
                break
            for i in live:
                self._run_one_epoch(i)
            if self.control.stopped:
                break
            self.control.epoch_done()
        statuses = {e.status for e in self._ends if e is not None}
        if "stopped" in statuses or self.control.stopped:
            done = min(t.epoch for t in self.trainers)
            self._finish("stopped", f"Stopped after {done} of {planned} epochs; the models are kept.")
        elif statuses == {"diverged"} and len(self._ends) == len(statuses) == 1:
            self._finish("diverged", self._ends[0].message if self._ends[0] else "Diverged.")
        elif "diverged" in statuses:
            msgs = [f"{self.labels[i]}: {e.message}" for i, e in enumerate(self._ends) if e and e.status == "diverged"]
            self._finish("finished" if len(self.trainers) > 1 else "diverged", " ".join(msgs))
        elif self._ends and all(
            early_stopped(e, t.epoch, t.config.epochs) for e, t in zip(self._ends, self.trainers, strict=True)
        ):
            self._finish("finished", " ".join(e.message for e in self._ends if e is not None))
        else:
            self._finish("finished", f"Finished {planned} epochs.")

    def _run_one_epoch(self, i: int) -> None:
        trainer = self.trainers[i]
        for event in trainer.run_epoch():
            if isinstance(event, StepEvent):
                if len(self._norms[i]) < MAX_STEP_TRACE:
                    self._norms[i].append(event.grad_norm)
                    self._clipped[i].append(event.clipped)
            elif isinstance(event, EpochEvent):
                samples = self._sample(trainer, event.epoch)
                ending = trainer.patience_ran_out() or trainer.epoch >= trainer.config.epochs
                # With early stopping on, a run's last published weights are its best by validation (the
                # checkpoint names their epoch); before that, the latest, so pages follow the training live.
                ckpt = from_trainer(trainer, best=ending and trainer.config.patience > 0)
                if self.recorder is not None:
                    self.recorder.epoch(i, event, ckpt, samples)
                with self._lock:
                    if samples:
                        self._samples[i][event.epoch] = samples
                    self._published[i] = ckpt
                    self._version += 1
            elif isinstance(event, EndEvent):
                with self._lock:
                    self._ends[i] = event
                    self._published[i] = from_trainer(trainer)
                    self._version += 1
                return
        if trainer.patience_ran_out():  # `train()` would stop here; the job drives epochs itself, so it asks
            p, best = trainer.config.patience, trainer.best_epoch
            message = (
                f"Stopped early: no better validation perplexity for {p} epochs; best from epoch {best} "
                f"(perplexity {trainer.best_val:.2f}), whose weights are kept."
            )
            trainer.status, trainer.message = "finished", message
            end = EndEvent("finished", message, trainer.epoch, best_epoch=best)
            with self._lock:
                self._ends[i] = end
                self._version += 1
            if self.recorder is not None:  # a comparison goes on: the store / web process hear of it now
                self.recorder.run_end(i, end)

    def _sample(self, trainer: Trainer, epoch: int) -> dict[str, str]:
        if not self.prefixes or (epoch % self.sample_every and epoch != trainer.config.epochs and epoch != 1):
            return {}
        return {p: generate(trainer.model, trainer.corpus, p, 50).text for p in self.prefixes}

    def _set_status(self, status: str) -> None:
        with self._lock:
            if self.status in DONE_STATUSES:
                return
            self.status = status
            self._version += 1
        if self.recorder is not None:
            self.recorder.status(status)

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            self.status, self.message = status, message
            self._finished = time.time()
            self._version += 1
            ends = list(self._ends)
        if self.recorder is not None:
            self.recorder.finish(status, message, ends)

    def release(self) -> None:
        """Free what only a continued run would need: optimiser state, gradients, duplicate weights.

        Only for a done job (its worker no longer touches the trainers). The
        curves, samples and last weights stay, so the page and Generate still
        show it; Continue then starts a fresh optimiser, as after `--slim`.
        The published checkpoint shares the model's own tensors instead of a copy.
        """
        if not self.done or self.released:
            return
        with self._lock:
            for i, trainer in enumerate(self.trainers):
                trainer.optimizer.state.clear()
                for p in trainer.model.parameters():
                    p.grad = None
                ckpt = self._published[i]
                ckpt.optimizer_state = None
                ckpt.model_state = {k: v.detach() for k, v in trainer.model.state_dict().items()}
            self.released = True

    # -- reading --------------------------------------------------------------------------
    def checkpoint(self, run: int = 0) -> Checkpoint:
        """The weights after the last completed epoch of run `run`."""
        with self._lock:
            return self._published[run]

    def snapshot(self, queue_position: int = 0) -> JobView:
        with self._lock:
            runs = [
                RunView(
                    label=self.labels[i],
                    config=t.config.to_dict(),
                    history=[e.to_dict() for e in t.history],
                    step_norms=list(self._norms[i]),
                    step_clipped=list(self._clipped[i]),
                    status=(self._ends[i].status if self._ends[i] else self.status),
                    message=(self._ends[i].message if self._ends[i] else ""),
                    samples=dict(self._samples[i]),
                    end=self._ends[i],
                )
                for i, t in enumerate(self.trainers)
            ]
            status, message, version = self.status, self.message, self._version
        planned = max(t.config.epochs for t in self.trainers)
        # Progress counts the runs still training: a run that diverged in epoch 1 must not pin it at 0.
        live = [r for r in runs if r.alive and not r.stopped_early] or runs
        epoch = min(len(r.history) for r in live)
        end = self._finished or time.time()
        elapsed = end - self._started if self._started else 0.0
        eta = None
        tps = None
        if status in ("running", "paused", "queued") and all(r.history for r in live):
            per_round = sum(sum(h["seconds"] for h in r.history[-5:]) / len(r.history[-5:]) for r in live)
            eta = per_round * max(0, planned - epoch)
        last = [r.history[-1]["tokens_per_s"] for r in live if r.history]
        if last:
            tps = sum(last) / len(last)
        if status == "running" and self.control.paused:
            status = "paused"
        return JobView(
            job_id=self.id,
            status=status,
            message=message,
            queue_position=queue_position,
            epoch=epoch,
            planned_epochs=planned,
            version=version,
            elapsed=elapsed,
            eta_seconds=eta,
            tokens_per_s=tps,
            runs=runs,
        )


class ProcessJob(Job):
    """A `Job` whose training runs in a worker process (see `process_backend`).

    The trainers given to it are only the starting point (and hold the
    history the worker reports); the weights a page reads are the worker's
    latest checkpoint bytes, parsed once per epoch when someone asks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control = SharedControl()
        for t in self.trainers:
            t.control = self.control
        self._bytes: list[bytes | None] = [None for _ in self.trainers]
        self._parsed: list[bytes | None] = [None for _ in self.trainers]
        self.process: Any = None

    def run(self, acquire, release) -> None:
        run_in_process(self, acquire, release)

    def checkpoint(self, run: int = 0) -> Checkpoint:
        with self._lock:
            data, parsed = self._bytes[run], self._parsed[run]
        if data is not None and data is not parsed:
            ckpt = from_own_bytes(data)
            with self._lock:
                self._published[run], self._parsed[run] = ckpt, data
        with self._lock:
            return self._published[run]

    def checkpoint_epochs(self, run: int = 0) -> int:
        with self._lock:
            return len(self.trainers[run].history)


class RayJob(ProcessJob):
    """A `Job` trained by a Ray actor on some node of a cluster (see `ray_backend`; Ray is imported there only).

    Like a `ProcessJob`, it keeps what a page reads and the latest checkpoint
    as bytes; the actor's node id and how late each epoch's event arrived are
    kept for the tests and the benchmark.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from .ray_backend import RayControl

        super().__init__(*args, **kwargs)
        self.control = RayControl()
        for t in self.trainers:
            t.control = self.control
        self.node_id: str | None = None
        self.event_lags: list[float] = []  # seconds from an epoch's end on the node to its arrival here

    def run(self, acquire, release) -> None:
        from .ray_backend import run_on_ray

        run_on_ray(self, acquire, release)


BACKENDS = {"thread": Job, "process": ProcessJob, "ray": RayJob}


class JobManager:
    """Every job of the process; at most `max_running` train at the same time."""

    def __init__(
        self,
        max_running: int = 2,
        reap_after: float = 120.0,
        forget_after: float = 6 * 3600,
        release_after: float = RELEASE_UNWATCHED_AFTER,
        max_finished_per_owner: int = MAX_FINISHED_PER_OWNER,
        max_finished_total: int = MAX_FINISHED_TOTAL,
        store: RunStore | None = None,
        backend: str = "thread",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.backend = backend
        if backend == "process":
            prewarm()
        self.max_running = max_running
        self.store = store  # None: runs live in memory only (tests, or a data folder that cannot be used)
        self.store_error: Exception | None = None  # why there is no store, for the app to show
        self.ray_error: Exception | None = None  # why RNN_LAB_RAY_ADDRESS was set but Ray is not used
        self.ray_cpus = 0  # CPUs of the Ray cluster when runs train there
        self.interrupted: list[str] = self._mark_interrupted() if store is not None else []
        self.evicted: dict[str, list[str]] = {}  # owner -> labels of runs the quota removed at the last submit
        self.reap_after = reap_after  # a running job nobody polled for this long is stopped
        self.forget_after = forget_after  # a finished job nobody looked at for this long is dropped
        self.release_after = release_after  # ... and after this long keeps only its weights and curves
        self.max_finished_per_owner = max_finished_per_owner
        self.max_finished_total = max_finished_total
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Condition()
        self._running: set[str] = set()
        self._waiting: list[str] = []
        # Reaping must not wait for the next visitor: a closed tab's job is stopped on time.
        self._closing = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="job-reaper", daemon=True)
        self._reaper.start()

    def _mark_interrupted(self) -> list[str]:
        """Live runs in the store that nobody drives any more: the server that ran them died.

        With Ray several servers share the store, so a run whose actor is still
        on the cluster belongs to another live server and is left alone.
        """
        assert self.store is not None
        if self.backend != "ray":
            return self.store.mark_interrupted()
        from .ray_backend import actor_alive

        live = {r.job_id for r in self.store.live_runs() if actor_alive(r.job_id)}
        return self.store.mark_interrupted(live_jobs=live)

    def control_remote(self, job_id: str, owner: str, action: str) -> bool:
        """Pause/resume/step_epoch/stop/touch the owner's run started by another server on the same Ray cluster.

        False when this server has no Ray backend, the job is not the owner's, or its actor is gone.
        """
        if self.backend != "ray" or self.store is None:
            return False
        if not any(r.job_id == job_id for r in self.store.runs(owner)):
            return False
        from .ray_backend import control_remote

        return control_remote(job_id, action)

    def live_elsewhere(self, job_id: str) -> bool:
        """True when another server's Ray actor is training this job now (so it must not be resumed here)."""
        if self.backend != "ray":
            return False
        with self._lock:
            mine = job_id in self._jobs
        if mine:
            return False
        from .ray_backend import actor_alive

        return actor_alive(job_id)

    def _reap_loop(self) -> None:
        while not self._closing.wait(timeout=min(10.0, self.reap_after / 4)):
            self.reap()

    # slots -----------------------------------------------------------------------------
    def _acquire(self, job: Job) -> None:
        with self._lock:
            self._waiting.append(job.id)
            while job.id in self._waiting and (self._waiting[0] != job.id or len(self._running) >= self.max_running):
                if job.control.stopped:
                    break
                self._lock.wait(timeout=0.2)
            if job.id in self._waiting:
                self._waiting.remove(job.id)
            self._running.add(job.id)
            self._lock.notify_all()

    def _release(self, job: Job) -> None:
        with self._lock:
            self._running.discard(job.id)
            self._lock.notify_all()

    # jobs ------------------------------------------------------------------------------
    def submit(self, owner: str, trainers: list[Trainer], labels: list[str] | None = None, **kwargs: Any) -> Job:
        self.reap()
        job = BACKENDS[self.backend](owner, trainers, labels or [t.config.model for t in trainers], **kwargs)
        if self.store is not None:
            job.recorder = Recorder(self.store, job.id, owner, job.kind, job.labels)
            self.evicted[owner] = job.recorder.register(
                trainers,
                resumed=kwargs.get("job_id") is not None,
                prefixes=list(job.prefixes),
                sample_every=job.sample_every,
            )
        with self._lock:
            old = self._jobs.get(job.id)
            if old is not None and not old.done:
                raise ValueError(f"job {job.id} is still running")
            self._jobs[job.id] = job
        job.thread = threading.Thread(
            target=job.run,
            args=(self._acquire, lambda: self._release(job)),
            name=f"train-{job.id}",
            daemon=True,
        )
        job.thread.start()
        return job

    def get(self, job_id: str | None, owner: str) -> Job | None:
        """The job if it exists and belongs to `owner`; else None (never another's job)."""
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            return None
        job.touch()
        return job

    def latest(self, owner: str, kind: str) -> Job | None:
        """The owner's most recent job of `kind` (a reloaded page finds its run again)."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner and j.kind == kind]
        if not mine:
            return None
        job = max(mine, key=lambda j: j.created)
        job.touch()
        return job

    def resume_stored(self, job_id: str, owner: str, extra_epochs: int = 0) -> Job | None:
        """Continue a stored run (interrupted, failed, stopped or finished) from its last checkpoint.

        Same job id and run ids, so the curve goes on where it stopped; None if
        the run is not the owner's or cannot be rebuilt (the store says why).
        """
        if self.store is None:
            return None
        live = self.get(job_id, owner)
        if live is not None and not live.done:
            return live
        if self.live_elsewhere(job_id):
            return None
        rebuilt = rebuild_trainers(self.store, job_id, owner, extra_epochs)
        if rebuilt is None:
            return None
        trainers, labels, kind, settings = rebuilt
        prefixes = tuple(p for p in settings.get("prefixes", []) if isinstance(p, str))
        sample_every = int(settings.get("sample_every", 10))
        return self.submit(
            owner, trainers, labels, kind=kind, job_id=job_id, prefixes=prefixes, sample_every=sample_every
        )

    def queue_position(self, job: Job) -> int:
        with self._lock:
            return self._waiting.index(job.id) + 1 if job.id in self._waiting else 0

    def view(self, job: Job) -> JobView:
        return job.snapshot(self.queue_position(job))

    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def reap(self, now: float | None = None) -> list[str]:
        """Stop jobs whose page went away; forget old finished ones. Returns ids touched."""
        now = time.time() if now is None else now
        touched = []
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            idle = now - job.last_seen
            if not job.done and idle > self.reap_after:
                job.stop()
                touched.append(job.id)
            elif job.done and idle > self.forget_after:
                with self._lock:
                    self._jobs.pop(job.id, None)
                touched.append(job.id)
            elif job.done and idle > self.release_after:
                job.release()
        return touched + self._retain()

    def _retain(self) -> list[str]:
        """Drop done jobs beyond `max_finished_per_owner` per owner and `max_finished_total` in all.

        Superseded runs go first (a page shows only its owner's latest run of
        that kind), then the oldest. Running and queued jobs never count: a new
        Train click is never refused, an old finished run makes room instead.
        """
        with self._lock:
            latest: dict[tuple[str, str], Job] = {}
            for job in self._jobs.values():
                key = (job.owner, job.kind)
                if key not in latest or job.created > latest[key].created:
                    latest[key] = job
            done = [j for j in self._jobs.values() if j.done]
            done.sort(key=lambda j: (latest[(j.owner, j.kind)] is j, j.created), reverse=True)
            per_owner: dict[str, int] = {}
            kept, dropped = 0, []
            for job in done:
                mine = per_owner.get(job.owner, 0)
                if mine >= self.max_finished_per_owner or kept >= self.max_finished_total:
                    dropped.append(job.id)
                else:
                    per_owner[job.owner] = mine + 1
                    kept += 1
            for job_id in dropped:
                self._jobs.pop(job_id, None)
        return dropped

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job and wait for the threads (tests call this)."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop()
        for job in jobs:
            if job.thread:
                job.thread.join(timeout)
        if self.backend == "process":
            shutdown_pool(timeout)
        if self.store is not None:
            self.store.close()
