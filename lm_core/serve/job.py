"""A training job as the web process knows it: its runs' settings, curves and published weights, its status.

Whoever trains it (a thread of this process, a worker process, a Ray actor)
tells it what happens through worker events, which `apply` folds in; its
backend's driver marks it started or lost, and its page reads `snapshot()`
and `checkpoint(run)`. Its state changes only through these methods.

A job never holds a model. A run's weights are its published checkpoint:
the bytes its worker sent after the run's last finished epoch (before the
first: the starting point), parsed when a page first asks. So nothing in the
web process can pass for a run's weights but the weights it trained, and
`release` only gives back the optimiser state a continued run would need.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import TYPE_CHECKING

from ..baselines import Baselines
from ..checkpoint import Checkpoint, from_own_bytes
from ..corpus import Corpus
from ..errors import LabError
from ..training import Control, TrainConfig
from .events import EpochDone, JobEnded, RunEnded, StatusChanged, WorkerEvent
from .memory_limit import OUT_OF_MEMORY
from .run import Run
from .views import DONE_STATUSES, JobView, RunView, job_view

if TYPE_CHECKING:
    from .recorder import Recorder

# How a job's own messages say things, once (the pages translate by status, and strip FAILED before a reason).
NOT_STARTED = "Stopped before it started."
FAILED = "Training failed: "
MEMORY_LIMIT = "ran out of its memory limit"  # in the message of a failed job that its worker's limit stopped


def ran_out_of_memory(status: str, message: str) -> bool:
    """Whether a job (or a stored run) ended because its worker's memory limit stopped it."""
    return status == "failed" and MEMORY_LIMIT in message


def failure(exc: BaseException) -> str:
    """The message of a job that an exception ended (a `LabError` is already a sentence for the user)."""
    return f"{FAILED}{exc}" if isinstance(exc, LabError) else f"{FAILED}{type(exc).__name__}: {exc}"


class Job:
    """One job: a run, or runs compared in lockstep, of one owner, trained by some backend."""

    def __init__(
        self,
        owner: str,
        runs: list[Run],
        control: Control,
        prefixes: tuple[str, ...] = (),
        sample_every: int = 10,
        kind: str = "train",
        job_id: str | None = None,
    ) -> None:
        self.id = job_id or uuid.uuid4().hex[:12]
        self.owner = owner
        self.kind = kind
        self.labels = [r.label for r in runs]
        self.prefixes = prefixes
        self.sample_every = max(1, sample_every)
        self.control = control  # the backend may hand it to its worker (`use_control`)
        self.created = time.time()
        self.last_seen = time.time()
        self.status = "queued"
        self.message = ""
        self.released = False  # optimiser states given back (see `release`)
        self.thread: threading.Thread | None = None  # its driver in this process (set by the manager)
        self.worker: object | None = None  # what trains it elsewhere, for tests and benchmarks (set by its backend)
        self.recorder: Recorder | None = None  # writes epochs, checkpoints and statuses to the run store
        self._runs = runs
        self._lock = threading.Lock()
        self._version = 0
        self._started: float | None = None
        self._finished: float | None = None

    # -- what a page may read -----------------------------------------------------------------------
    def corpus(self, run: int = 0) -> Corpus:
        """The run's corpus; read again from the run store if the job let go of it (`let_go_of_corpora`)."""
        with self._lock:
            corpus = self._runs[run].corpus
        if corpus is not None:
            return corpus
        corpus = self.recorder.corpus(run) if self.recorder is not None else None
        if corpus is None:
            raise LabError("error.runs.text_missing", label=self.labels[run])
        with self._lock:
            self._runs[run].corpus = corpus
        return corpus

    def corpus_text(self, run: int = 0) -> str:
        return self.corpus(run).text

    def let_go_of_corpora(self, min_chars: int = 0) -> bool:
        """A done job nobody looks at: drop its corpora of at least `min_chars` characters (a class's pasted
        texts, up to 20 MB each, and their ids), which the run store keeps; a page that asks again reads them
        back. False if it keeps them (not done, or the store does not hold every text)."""
        if not self.done or self.recorder is None:
            return False
        with self._lock:
            held = [i for i, run in enumerate(self._runs) if run.corpus is not None and len(run.corpus) >= min_chars]
        if not held or not all(self.recorder.has_corpus(i) for i in held):
            return False
        with self._lock:
            for i in held:
                self._runs[i].corpus = None
        return True

    def config(self, run: int = 0) -> TrainConfig:
        return self._runs[run].config

    def baselines(self, run: int = 0) -> Baselines | None:
        return self._runs[run].baselines

    def train_chars(self, run: int = 0) -> int:
        """Characters of the training split (fixed when the job was built)."""
        return self._runs[run].train_chars

    def planned_epochs(self, run: int = 0) -> int:
        return self._runs[run].config.epochs

    def epochs_done(self, run: int = 0) -> int:
        with self._lock:
            return len(self._runs[run].history)

    def checkpoint(self, run: int = 0) -> Checkpoint:
        """The weights after the last finished epoch of run `run` (before the first: its starting point)."""
        with self._lock:
            data = self._runs[run].unparsed
        if data is not None:
            ckpt = from_own_bytes(data)  # the server's own worker wrote these bytes
            with self._lock:
                if self._runs[run].unparsed is data:
                    self._runs[run].published, self._runs[run].unparsed = ckpt, None
        with self._lock:
            return self._runs[run].published

    def snapshot(self, queue_position: int = 0) -> JobView:
        """Everything a page draws, copied under the lock."""
        with self._lock:
            runs = [
                RunView(
                    label=r.label,
                    config=r.config.to_dict(),
                    history=[e.to_dict() for e in r.history],
                    step_norms=list(r.norms),
                    step_clipped=list(r.clipped),
                    status=r.end.status if r.end else self.status,
                    message=r.end.message if r.end else "",
                    samples=dict(r.samples),
                    end=r.end,
                )
                for r in self._runs
            ]
            status, message, version = self.status, self.message, self._version
        elapsed = (self._finished or time.time()) - self._started if self._started else 0.0
        if status == "running" and self.control.paused:
            status = "paused"
        return job_view(self.id, status, message, version, runs, elapsed, queue_position)

    def held_bytes(self) -> int:
        """Bytes of the weights and optimiser states this job keeps for its runs: what `Retention` budgets."""
        with self._lock:
            return sum(run.held_bytes() for run in self._runs)

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    # -- a page's buttons, callable from any thread ------------------------------------------------------
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

    def touch(self, at: float | None = None) -> None:
        """Someone looked at the job (now, or at `at`: a page on another server): it must not be reaped."""
        self.last_seen = max(self.last_seen, time.time() if at is None else at)

    @property
    def version(self) -> int:
        """Changes whenever a page would draw the job differently (an epoch, a status, a control pressed).

        The same number as `snapshot().version`, without copying the histories: a poll compares it.
        """
        return self._version

    # -- its driver's and its worker's news -----------------------------------------------------------
    def use_control(self, control: Control) -> None:
        """Train under `control` from now on (a worker's), with whatever was pressed while the job queued."""
        control.adopt(self.control)
        self.control = control

    def let_go_of_worker(self) -> None:
        """Its worker ended cleanly and may train another job: a late click on this page must not reach it."""
        detached = Control()
        detached.stop()
        self.control = detached

    def started(self) -> None:
        """It holds a CPU slot and its worker begins: from now on its time counts."""
        self._started = time.time()

    def set_status(self, status: str) -> None:
        """paused | queued | running; a done job's status stays."""
        with self._lock:
            if self.status in DONE_STATUSES:
                return
            self.status = status
            self._version += 1
        if self.recorder is not None:
            self.recorder.status(status)

    def apply(self, event: WorkerEvent) -> None:
        """Fold in what its worker said (the one place a worker's news enters the job)."""
        if isinstance(event, EpochDone):
            self._epoch_done(event)
        elif isinstance(event, StatusChanged):
            self.set_status(event.status)
        elif isinstance(event, RunEnded):
            self._run_ended(event)
        elif isinstance(event, JobEnded) and event == JobEnded("failed", OUT_OF_MEMORY):
            self.worker_lost("failed", OUT_OF_MEMORY)
        elif isinstance(event, JobEnded):
            self.finish(event.status, event.message)

    def _epoch_done(self, event: EpochDone) -> None:
        if self.recorder is not None:
            self.recorder.epoch(event.run, event.metrics, event.checkpoint)
        with self._lock:
            run = self._runs[event.run]
            run.history.append(event.metrics)
            run.keep_norms(event.norms, event.clipped)
            if event.samples:
                run.samples[event.metrics.epoch] = event.samples
            run.unparsed = event.checkpoint
            self._version += 1

    def _run_ended(self, event: RunEnded) -> None:
        with self._lock:
            run = self._runs[event.run]
            run.keep_norms(event.norms, event.clipped)
            run.end = event.end
            self._version += 1
        if self.recorder is not None:  # a comparison may go on: the store hears of this run's end now
            self.recorder.run_end(event.run, event.end)

    def finish(self, status: str, message: str) -> None:
        """The job is over (its worker said how, or its driver found the worker gone)."""
        with self._lock:
            self.status, self.message = status, message
            self._finished = time.time()
            self._version += 1
            ends = [r.end for r in self._runs]
        if self.recorder is not None:
            self.recorder.finish(status, message, ends)

    def worker_lost(self, status: str, why: str) -> None:
        """Its worker is gone without a word: "failed" (a process died, or its memory limit stopped it: `why` is
        `OUT_OF_MEMORY`), "interrupted" (a Ray node or the cluster went away) or "error"; the store has every
        finished epoch, so the first two can resume."""
        epochs = min(self.epochs_done(i) for i in range(len(self._runs)))
        if status == "failed" and why == OUT_OF_MEMORY:
            self.finish(
                status,
                f"The run {MEMORY_LIMIT} after epoch {epochs} (it needed more memory than estimated); "
                "resume it from its last checkpoint on My runs.",
            )
        elif status == "failed":
            self.finish(
                status,
                f"The worker process stopped unexpectedly ({why}) after epoch {epochs}; "
                "resume it from its last checkpoint on My runs.",
            )
        elif status == "interrupted":
            self.finish(status, f"Interrupted at epoch {epochs} ({why}); resume it from its checkpoint on My runs.")
        else:
            self.finish("error", f"{FAILED}{why}")

    def release(self) -> None:
        """Give back what only a continued run would need: the optimiser state of each published checkpoint.

        Only for a done job. The curves, samples and published weights stay, so
        its page and Generate still show it; Continue then starts a fresh
        optimiser, as after `--slim`. The weights are never replaced: they are the run's.
        """
        if not self.done or self.released:
            return
        latest = [self.checkpoint(i) for i in range(len(self._runs))]
        with self._lock:
            for run, ckpt in zip(self._runs, latest, strict=True):
                run.published = dataclasses.replace(ckpt, optimizer_state=None)
            self.released = True

    def _bump(self) -> None:
        with self._lock:
            self._version += 1
