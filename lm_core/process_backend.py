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
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
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
MAX_IDLE = max(WARM_SPARES, os.cpu_count() or 1)  # finished workers kept for the next runs (~300 MB each)
ORPHAN_CHECK_SECONDS = 1.0  # a worker whose server died exits within this
NICE_ENV = "RNN_LAB_WORKER_NICE"  # 0..19; a worker reads it when it starts (the operator's, never a visitor's)
DEFAULT_NICENESS = 10


def _niceness() -> int:
    """How much nicer than the server a worker runs: `RNN_LAB_WORKER_NICE`, else `DEFAULT_NICENESS`.

    Why nicer: when the web process needs the CPU (a page, a click, a poll) the kernel gives it at once, and a
    worker loses nothing while the web process is idle. At nice 10 a worker weighs 110 against the web
    process's 1,024 (Linux CFS), so when they share a core the web process gets about 90 % of it.
    """
    try:
        value = int(os.environ.get(NICE_ENV, ""))
    except ValueError:
        return DEFAULT_NICENESS
    return min(19, max(0, value))


WORKER_NICENESS = _niceness()


class SharedControl(Control):
    """`training.Control` over multiprocessing primitives, shared by the web process and its worker."""

    def __init__(self, ctx: Any | None = None) -> None:
        super().__init__()
        ctx = ctx or mp.get_context(CONTEXT)
        self._go = ctx.Event()
        self._go.set()
        self._stop = ctx.Event()
        self._after_epoch = ctx.Value("b", 0)
        # Set while the worker holds one of the server's CPU slots. A paused worker gives its slot back (a
        # queued run trains meanwhile); after Resume or Step it waits here until the server grants one again.
        self._slot = ctx.Event()

    @property
    def _pause_after_epoch(self) -> bool:  # the base class reads and writes this name
        return bool(self._after_epoch.value)

    @_pause_after_epoch.setter
    def _pause_after_epoch(self, value: bool) -> None:
        if hasattr(self, "_after_epoch"):
            self._after_epoch.value = int(value)

    def reset(self) -> None:
        """Back to a fresh run's state, for the next job of a reused worker."""
        self._go.set()
        self._stop.clear()
        self._after_epoch.value = 0
        self._slot.clear()

    def wait_for_slot(self) -> None:
        """In the worker, after a pause: block until the server grants a CPU slot again, or the run stops."""
        while not self._slot.wait(timeout=0.1):
            if self._stop.is_set():
                return

    def __getstate__(self) -> dict[str, Any]:
        return {"_go": self._go, "_stop": self._stop, "_after_epoch": self._after_epoch, "_slot": self._slot}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The worker's copy starts from a plain Control's local state (no callbacks, its own pause clock:
        # the time blocked while paused is measured where the training loop waits) and shares the events.
        Control.__init__(self)
        self._go, self._stop, self._after_epoch = state["_go"], state["_stop"], state["_after_epoch"]
        self._slot = state["_slot"]


@dataclass
class RunSpec:
    """Everything a worker needs to build one run: plain, picklable data."""

    config: dict[str, Any]
    corpus_name: str
    corpus_text: str
    start: bytes  # checkpoint of the starting point (weights, optimiser, history, RNG)
    # Where each document starts: the text is already preprocessed (newlines are spaces), so the worker could not
    # find them again, and its validation split would fall mid-ci instead of at a whole ci as in the web process.
    doc_starts: list[int] = field(default_factory=list)


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
            doc_starts=list(t.corpus.doc_starts),
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

    def run_end(self, index: int, end: EndEvent) -> None:
        """One run of a comparison ended (early stopping) while the others train on."""
        self.conn.send(("end", index, end.__dict__))

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
        start_without_main(self.process)
        spec_recv.close()
        events_send.close()


_NO_MAIN = types.ModuleType("__main__")  # no __file__, no __spec__: nothing for a spawned child to re-run
_start_lock = threading.Lock()


def start_without_main(process: Any) -> None:
    """Start a spawned process without it re-importing the parent's `__main__` module.

    "spawn" runs the parent's main module again in the child (as `__mp_main__`)
    when it has a `__file__`. In a Streamlit server that module is the app's
    script (Streamlit puts each script run into `sys.modules["__main__"]`), so
    every worker imported `streamlit_app.py` with Streamlit and every page's
    imports: 10-15 s of a loaded 2-core machine (py-spy) before the worker could
    train, and page code running where no page exists. The swap lasts only
    while `start()` pickles the preparation data; a script run that begins
    meanwhile executes its own module object, which never goes through
    `sys.modules`, so putting the old entry back cannot disturb it.
    """
    with _start_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = _NO_MAIN
        try:
            process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main


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


def refill_later() -> None:
    """Start the next spare in the background.

    The driver calls this once its run has drawn its first point (or ended):
    a spare's warm-up is seconds of a core, which on a 2-core machine would
    otherwise be taken from the very epochs a student is waiting to see.
    """
    threading.Thread(target=_refill, name="warm-worker", daemon=True).start()


def _give_back(warm: _Warm) -> None:
    """A worker whose job ended cleanly waits for the next job instead of exiting.

    The next run then skips the spawn and torch's import (seconds of a core
    each time: on a 2-core machine serving a class, most of a short run's
    cost). At most `MAX_IDLE` wait; a worker beyond that exits when its spec
    pipe closes.
    """
    warm.control.reset()
    with _spares_lock:
        _spares[:] = [w for w in _spares if w.process.is_alive()]
        if warm.process.is_alive() and len(_spares) < MAX_IDLE:
            _spares.insert(0, warm)  # a reused worker is ready at once: it goes first
            return
    _retire(warm.process, warm.spec_send)


def _retire(process: Any, spec_send: Connection) -> None:
    """Let a worker exit (its spec pipe closes) and reap it as it does, in a thread of its own.

    A child process nobody waits for stays a zombie until the next worker starts (multiprocessing
    reaps finished children only then); on a quiet server that is forever.
    """
    spec_send.close()
    with _spares_lock:
        _retiring.append(process)
    threading.Thread(target=_reap, args=(process,), name="reap-worker", daemon=True).start()


_retiring: list[Any] = []  # workers told to exit and not yet reaped (`shutdown_pool` waits for them too)


def _reap(process: Any) -> None:
    process.join(STOP_GRACE_SECONDS)
    if process.is_alive():
        process.terminate()
        process.join(STOP_GRACE_SECONDS)
    with _spares_lock:
        if process in _retiring:
            _retiring.remove(process)


def idle_workers() -> list[Any]:
    """The processes waiting for a job (spares and reused workers)."""
    with _spares_lock:
        return [w.process for w in _spares if w.process.is_alive()]


def shutdown_pool(timeout: float = 10.0) -> None:
    """Let every idle worker exit and wait for them, and for those already exiting (a server that stops, or a
    test that ends, calls this)."""
    with _spares_lock:
        idle, _spares[:] = list(_spares), []
        retiring = list(_retiring)
    for warm in idle:
        warm.spec_send.close()
    for process in [w.process for w in idle] + retiring:
        process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(timeout)


def _take_warm() -> _Warm:
    """A ready worker if there is one, else a new one (the driver starts the next spare: `refill_later`)."""
    with _spares_lock:
        warm = None
        while _spares and warm is None:
            candidate = _spares.pop(0)
            if candidate.process.is_alive():
                warm = candidate
    if warm is None:
        warm = _Warm(mp.get_context(CONTEXT))
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


def _detach(job: Any) -> None:
    """A finished job lets go of its worker's control, so a late click on its page cannot reach the next job."""
    detached = Control()
    detached.stop()
    job.control = detached
    for t in job.trainers:
        t.control = detached


_lowered = False


def lower_priority() -> None:
    """In a worker (process or Ray actor): run `WORKER_NICENESS` nicer than now, once per process.

    A platform without niceness (or a system that forbids it) trains at the inherited priority.
    """
    global _lowered
    if _lowered:
        return
    _lowered = True
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS))
    except (AttributeError, OSError):
        pass


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its server (kill -9 of the server leaves a paused worker waiting forever)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(ORPHAN_CHECK_SECONDS)


def _warm_main(spec_conn: Connection, control: SharedControl, conn: Connection, ready: Any) -> None:
    lower_priority()  # before torch's import: that is seconds of a core the web process may need more
    import torch  # the slow import happens here, before anyone waits for this worker

    from . import jobs  # noqa: F401 -- likewise

    torch.set_num_threads(1)
    warm_up_torch()
    ready.set()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    while True:  # one job after another: a worker is reused until the server closes its spec pipe
        try:
            spec = spec_conn.recv()
        except (EOFError, OSError):
            return  # the server went away, or has enough idle workers
        worker_main(spec, control, conn, close=False)


def _give_back_slot(control: SharedControl, conn: Connection) -> None:
    """In the worker, as it pauses: the slot is free for a queued run (the driver releases it)."""
    control._slot.clear()
    conn.send(("status", "paused"))


def _take_slot(control: SharedControl, conn: Connection) -> None:
    """In the worker, on Resume or Step: queue for a slot like any run, then train on."""
    if not control._slot.is_set():
        conn.send(("status", "queued"))
        control.wait_for_slot()
    conn.send(("status", "running"))


def worker_main(spec: JobSpec, control: SharedControl, conn: Connection, close: bool = True) -> None:
    """Body of the worker process: build the trainers, run the lockstep epochs, report everything.

    `close=False` keeps the event pipe open for the next job of a reused worker.
    """
    import torch

    from .jobs import Job

    lower_priority()  # a Ray actor comes here directly
    torch.set_num_threads(1)
    try:
        trainers = []
        for run in spec.runs:
            corpus = Corpus.from_text(run.corpus_text, run.corpus_name, max_chars=None)
            if run.doc_starts:
                corpus.doc_starts = list(run.doc_starts)
            trainer = Trainer(corpus, TrainConfig.from_dict(run.config))
            checkpoint.restore_trainer(checkpoint.from_own_bytes(run.start), trainer)
            trainers.append(trainer)
        job = Job(spec.owner, trainers, spec.labels, spec.prefixes, spec.sample_every, spec.kind, spec.job_id)
        job.control = control
        for t in trainers:
            t.control = control
        recorder = _PipeRecorder(conn, job)
        job.recorder = recorder
        control.on_block = lambda: _give_back_slot(control, conn)
        control.on_unblock = lambda: _take_slot(control, conn)
        conn.send(("status", "running"))
        job._loop()
    except Exception as exc:  # noqa: BLE001 -- reported to the page instead of a silent exit
        traceback.print_exc()
        conn.send(("finish", "error", f"Training failed: {type(exc).__name__}: {exc}"))
    finally:
        if close:
            conn.close()


def run_in_process(job: Any, acquire: Any, release: Any) -> None:
    """Driver thread in the web process for a `ProcessJob`: a slot, a worker, and its events."""
    from .jobs import MAX_STEP_TRACE

    refilled = False
    try:
        acquire(job)
        if job.control.stopped:
            job._finish("stopped", "Stopped before it started.")
            return
        job._started = time.time()
        warm = _take_warm()
        _adopt(job, warm.control)
        warm.control._slot.set()
        held = True  # this run holds a CPU slot; a paused worker lends it to the queue
        warm.spec_send.send(spec_from_trainers(job))
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
                if not refilled and (message[0] == "epoch" or finished):
                    refill_later()
                    refilled = True
                if message == ("status", "paused") and held:
                    release()
                    held = False
                continue
            control = job.control
            if not held and not control.paused and not control.stopped:  # Resume or Step while it had no slot
                job._set_status("queued")
                acquire(job)
                held = True
                control._slot.set()
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
            release()  # the run is over: its slot goes to the next run (idempotent)
        if finished and process.is_alive():
            _detach(job)
            _give_back(warm)
        else:
            warm.spec_send.close()
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
        if not refilled and job.process is not None:
            refill_later()


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
