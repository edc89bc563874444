"""Training in a worker process: the same `Job` interface, with the work done outside the web server.

Why: in the server's own threads every run shares one interpreter (and its
lock) with every page render, so runs crawl and pages stall. Here a
`ProcessJob` keeps what a page reads (history, norms, samples, the latest
checkpoint as bytes) while a worker process started with the "spawn" context
(never a fork of a process holding torch threads and an event loop) builds the
trainers from a picklable spec, runs the lockstep epochs with one torch
thread, and sends plain events back through a pipe:

    ("epoch", run, metrics, norms, clipped, samples, checkpoint_bytes)
    ("status", "paused" | "running")
    ("end", run, end_event_fields)
    ("finish", status, message)

Controls travel the other way through a `SharedControl`: the same
pause/resume/step/stop as `training.Control`, backed by multiprocessing
events the worker checks between minibatches, so they answer as fast as
in a thread. This is the backend interface another backend (a Ray actor) can
implement: take a spec, honour the shared control, send these events.
A worker that dies without "finish" makes the run "failed"; its last
checkpoint (written after every epoch) lets My runs resume it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from . import checkpoint
from .checkpoint import Checkpoint
from .corpus import Corpus
from .training import Control, EndEvent, EpochEvent, TrainConfig, Trainer
from .warmup import warm_up_torch

CONTEXT = "spawn"
POLL_SECONDS = 0.1  # how often the driver thread looks at the pipe and the control
STOP_GRACE_SECONDS = 10.0  # a stopped worker gets this long to end on its own before it is terminated
WARM_SPARES = 1  # workers started ahead (torch already imported), so a new run's first epoch is not late
ORPHAN_CHECK_SECONDS = 1.0  # a worker whose server died exits within this


class SharedControl(Control):
    """`training.Control` over multiprocessing primitives, shared by the web process and its worker."""

    def __init__(self, ctx: Any | None = None) -> None:
        super().__init__()
        ctx = ctx or mp.get_context(CONTEXT)
        self._go = ctx.Event()
        self._go.set()
        self._stop = ctx.Event()
        self._after_epoch = ctx.Value("b", 0)

    @property
    def _pause_after_epoch(self) -> bool:  # the base class reads and writes this name
        return bool(self._after_epoch.value)

    @_pause_after_epoch.setter
    def _pause_after_epoch(self, value: bool) -> None:
        if hasattr(self, "_after_epoch"):
            self._after_epoch.value = int(value)

    def __getstate__(self) -> dict[str, Any]:
        return {"_go": self._go, "_stop": self._stop, "_after_epoch": self._after_epoch}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The worker's copy starts from a plain Control's local state (no callbacks, its own pause clock:
        # the time blocked while paused is measured where the training loop waits) and shares the events.
        Control.__init__(self)
        self._go, self._stop, self._after_epoch = state["_go"], state["_stop"], state["_after_epoch"]


@dataclass
class RunSpec:
    """Everything a worker needs to build one run: plain, picklable data."""

    config: dict[str, Any]
    corpus_name: str
    corpus_text: str
    start: bytes  # checkpoint of the starting point (weights, optimiser, history, RNG)


@dataclass
class JobSpec:
    job_id: str
    owner: str
    kind: str
    labels: list[str]
    prefixes: tuple[str, ...]
    sample_every: int
    runs: list[RunSpec]


def spec_from_trainers(job: Any) -> JobSpec:
    """The spec of a `Job` built in the web process (its trainers are only the starting point)."""
    runs = [
        RunSpec(
            config=t.config.to_dict(),
            corpus_name=t.corpus.name,
            corpus_text=t.corpus.text,
            start=checkpoint.to_bytes(checkpoint.from_trainer(t)),
        )
        for t in job.trainers
    ]
    return JobSpec(job.id, job.owner, job.kind, list(job.labels), tuple(job.prefixes), job.sample_every, runs)


class _PipeRecorder:
    """Inside the worker: what a `Job` would record, sent to the web process instead."""

    def __init__(self, conn: Connection, job: Any) -> None:
        self.conn, self.job = conn, job
        self.sent_steps = [0 for _ in job.trainers]

    def epoch(self, index: int, event: EpochEvent, ckpt: Checkpoint, samples: dict | None = None) -> None:
        start = self.sent_steps[index]
        norms, clipped = self.job._norms[index][start:], self.job._clipped[index][start:]
        self.sent_steps[index] = start + len(norms)
        data = checkpoint.to_bytes(ckpt)
        self.conn.send(("epoch", index, event.to_dict(), norms, clipped, samples or {}, data))

    def status(self, status: str) -> None:
        self.conn.send(("status", status))

    def finish(self, status: str, message: str, ends: list[EndEvent | None]) -> None:
        for i, end in enumerate(ends):
            if end is not None:
                self.conn.send(("end", i, end.__dict__))
        self.conn.send(("finish", status, message))


class _Warm:
    """A worker process started ahead of need: torch imported, waiting for its spec."""

    def __init__(self, ctx: Any) -> None:
        self.control = SharedControl(ctx)
        self.ready = ctx.Event()  # set by the worker once torch is imported
        spec_recv, self.spec_send = ctx.Pipe(duplex=False)
        self.events, events_send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_warm_main, args=(spec_recv, self.control, events_send, self.ready), daemon=True
        )
        self.process.start()
        spec_recv.close()
        events_send.close()


_spares: list[_Warm] = []
_spares_lock = threading.Lock()


def _refill() -> None:
    ctx = mp.get_context(CONTEXT)
    with _spares_lock:
        _spares[:] = [w for w in _spares if w.process.is_alive()]
        while len(_spares) < WARM_SPARES:
            _spares.append(_Warm(ctx))


def prewarm() -> None:
    """Start the spare worker(s) in the background (a server calls this when it starts)."""
    threading.Thread(target=_refill, name="warm-worker", daemon=True).start()


def wait_warm(timeout: float) -> bool:
    """True once a spare worker has imported torch (benchmarks wait for this, as a running server would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _spares_lock:
            spares = list(_spares)
        if any(w.ready.is_set() for w in spares):
            return True
        time.sleep(0.05)
    return False


def _take_warm() -> _Warm:
    """A ready worker if there is one (and start the next spare in the background), else a new one."""
    with _spares_lock:
        warm = None
        while _spares and warm is None:
            candidate = _spares.pop(0)
            if candidate.process.is_alive():
                warm = candidate
    if warm is None:
        warm = _Warm(mp.get_context(CONTEXT))
    threading.Thread(target=_refill, name="warm-worker", daemon=True).start()
    return warm


def _adopt(job: Any, control: SharedControl) -> None:
    """Give the job the worker's control, carrying over what was pressed while it queued."""
    old = job.control
    if old.stopped:
        control.stop()
    elif old.paused:
        control.pause()
    control._pause_after_epoch = old._pause_after_epoch
    job.control = control
    for t in job.trainers:
        t.control = control


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its server (kill -9 of the server leaves a paused worker waiting forever)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(ORPHAN_CHECK_SECONDS)


def _warm_main(spec_conn: Connection, control: SharedControl, conn: Connection, ready: Any) -> None:
    import torch  # the slow import happens here, before anyone waits for this worker

    from . import jobs  # noqa: F401 -- likewise

    torch.set_num_threads(1)
    warm_up_torch()
    ready.set()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        spec = spec_conn.recv()
    except (EOFError, OSError):
        return  # the server went away before using this spare
    worker_main(spec, control, conn)


def worker_main(spec: JobSpec, control: SharedControl, conn: Connection) -> None:
    """Body of the worker process: build the trainers, run the lockstep epochs, report everything."""
    import torch

    from .jobs import Job

    torch.set_num_threads(1)
    try:
        trainers = []
        for run in spec.runs:
            corpus = Corpus.from_text(run.corpus_text, run.corpus_name, max_chars=None)
            trainer = Trainer(corpus, TrainConfig.from_dict(run.config))
            checkpoint.restore_trainer(checkpoint.from_bytes(run.start), trainer)
            trainers.append(trainer)
        job = Job(spec.owner, trainers, spec.labels, spec.prefixes, spec.sample_every, spec.kind, spec.job_id)
        job.control = control
        for t in trainers:
            t.control = control
        recorder = _PipeRecorder(conn, job)
        job.recorder = recorder
        control.on_block = lambda: conn.send(("status", "paused"))
        control.on_unblock = lambda: conn.send(("status", "running"))
        conn.send(("status", "running"))
        job._loop()
    except Exception as exc:  # noqa: BLE001 -- reported to the page instead of a silent exit
        traceback.print_exc()
        conn.send(("finish", "error", f"Training failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_in_process(job: Any, acquire: Any, release: Any) -> None:
    """Driver thread in the web process for a `ProcessJob`: a slot, a worker, and its events."""
    from .jobs import MAX_STEP_TRACE

    try:
        acquire(job)
        if job.control.stopped:
            job._finish("stopped", "Stopped before it started.")
            return
        job._started = time.time()
        warm = _take_warm()
        _adopt(job, warm.control)
        warm.spec_send.send(spec_from_trainers(job))
        warm.spec_send.close()
        receive, process = warm.events, warm.process
        job.process = process
        finished = False
        stop_seen: float | None = None
        while not finished:
            if receive.poll(POLL_SECONDS):
                try:
                    message = receive.recv()
                except (EOFError, OSError):
                    break
                finished = _apply(job, message, MAX_STEP_TRACE)
                continue
            if not process.is_alive():
                if receive.poll(0):
                    continue
                break
            if job.control.stopped:
                stop_seen = stop_seen or time.monotonic()
                if time.monotonic() - stop_seen > STOP_GRACE_SECONDS:
                    process.terminate()
        if finished:
            release()  # the run is over: its slot goes to the next run while this worker exits (idempotent)
        process.join(STOP_GRACE_SECONDS)
        if not finished:
            code = process.exitcode
            epochs = min(len(t.history) for t in job.trainers)
            job._finish(
                "failed",
                f"The worker process stopped unexpectedly (exit code {code}) after epoch {epochs}; "
                "resume it from its last checkpoint on My runs.",
            )
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        job._finish("error", f"Training failed: {type(exc).__name__}: {exc}")
    finally:
        release()


def _apply(job: Any, message: tuple, max_steps: int) -> bool:
    """Fold one worker event into the job's state; True when the worker is done."""
    kind = message[0]
    if kind == "epoch":
        _, i, metrics, norms, clipped, samples, data = message
        if job.recorder is not None:
            job.recorder.epoch_data(i, metrics, data)
        with job._lock:
            job.trainers[i].history.append(EpochEvent(**metrics))
            room = max(0, max_steps - len(job._norms[i]))
            job._norms[i].extend(norms[:room])
            job._clipped[i].extend(clipped[:room])
            if samples:
                job._samples[i][metrics["epoch"]] = samples
            job._bytes[i] = data
            job._version += 1
    elif kind == "status":
        job._set_status(message[1])
    elif kind == "end":
        with job._lock:
            job._ends[message[1]] = EndEvent(**message[2])
            job._version += 1
    elif kind == "finish":
        job._finish(message[1], message[2])
        return True
    return False
