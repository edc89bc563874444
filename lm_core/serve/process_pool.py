"""Worker processes kept ready: started ahead of need (torch imported), reused after a clean job.

A new worker costs a spawn and torch's import: seconds of a core each time,
which on a 2-core machine serving a class is most of a short run's cost. So
`WARM_SPARES` wait ahead of the next Train click, a worker whose job ended
cleanly waits for the next job (at most `MAX_IDLE` do), and one whose server
died exits by itself. Workers are started with the "spawn" context, never as
a fork of a process that holds torch threads and an event loop.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
import types
from multiprocessing.connection import Connection
from typing import Any

from . import memory_limit
from .driver import STOP_GRACE_SECONDS
from .niceness import lower_priority
from .process_control import SharedControl
from .warmup import warm_up_torch
from .worker import worker_main

CONTEXT = "spawn"
WARM_SPARES = 1  # workers started ahead (torch already imported), so a new run's first epoch is not late
MAX_IDLE = max(WARM_SPARES, os.cpu_count() or 1)  # finished workers kept for the next runs (~300 MB each)
ORPHAN_CHECK_SECONDS = 1.0  # a worker whose server died exits within this


class Worker:
    """A worker process waiting for a job spec, with its control and the pipe its events come back on."""

    def __init__(self, ctx: Any) -> None:
        self.control = SharedControl(ctx)
        self.ready = ctx.Event()  # set by the worker once torch is imported
        spec_recv, self.spec_send = ctx.Pipe(duplex=False)
        self.events, events_send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_worker_loop, args=(spec_recv, self.control, events_send, self.ready), daemon=True
        )
        start_without_main(self.process)
        spec_recv.close()
        events_send.close()

    def dismiss(self) -> None:
        """Close its spec pipe: an idle worker exits, a busy one at the end of its job."""
        self.spec_send.close()


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


_spares: list[Worker] = []
_spares_lock = threading.Lock()


def _refill() -> None:
    ctx = mp.get_context(CONTEXT)
    with _spares_lock:
        _spares[:] = [w for w in _spares if w.process.is_alive()]
        while len(_spares) < WARM_SPARES:
            _spares.append(Worker(ctx))


def refill_later() -> None:
    """Start the next spare in the background.

    A server calls this when it starts; a driver once its run has drawn its
    first point (or ended): a spare's warm-up is seconds of a core, which on a
    2-core machine would otherwise be taken from the very epochs a student is
    waiting to see.
    """
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


def take() -> Worker:
    """A ready worker if there is one, else a new one (the driver starts the next spare: `refill_later`)."""
    with _spares_lock:
        worker = None
        while _spares and worker is None:
            candidate = _spares.pop(0)
            if candidate.process.is_alive():
                worker = candidate
    return worker if worker is not None else Worker(mp.get_context(CONTEXT))


def give_back(worker: Worker) -> None:
    """A worker whose job ended cleanly waits for the next job instead of exiting (at most `MAX_IDLE` wait)."""
    worker.control.reset()
    with _spares_lock:
        _spares[:] = [w for w in _spares if w.process.is_alive()]
        if worker.process.is_alive() and len(_spares) < MAX_IDLE:
            _spares.insert(0, worker)  # a reused worker is ready at once: it goes first
            return
    retire(worker)


_retiring: list[Any] = []  # workers told to exit and not yet reaped (`shutdown` waits for them too)


def retire(worker: Worker) -> None:
    """Let a worker exit (its spec pipe closes) and reap it as it does, in a thread of its own.

    A child process nobody waits for stays a zombie until the next worker starts (multiprocessing
    reaps finished children only then); on a quiet server that is forever.
    """
    worker.dismiss()
    with _spares_lock:
        _retiring.append(worker.process)
    threading.Thread(target=_reap, args=(worker.process,), name="reap-worker", daemon=True).start()


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


def shutdown(timeout: float = 10.0) -> None:
    """Let every idle worker exit and wait for them, and for those already exiting (a server that stops, or a
    test that ends, calls this)."""
    with _spares_lock:
        idle, _spares[:] = list(_spares), []
        retiring = list(_retiring)
    for worker in idle:
        worker.dismiss()
    for process in [w.process for w in idle] + retiring:
        process.join(timeout)
        if process.is_alive():
            process.terminate()
            process.join(timeout)


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its server (kill -9 of the server leaves a paused worker waiting forever)."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(ORPHAN_CHECK_SECONDS)


def _worker_loop(spec_conn: Connection, control: SharedControl, conn: Connection, ready: Any) -> None:
    """The worker process: pay torch's first-use costs, then train one job after another until dismissed.

    Each job trains under its spec's memory limit (`memory_limit`). A job the limit stopped ends the process
    (the pool starts a fresh one); a refusal outside the job's own code (receiving its spec, sending an
    event) exits with `OUT_OF_MEMORY_EXIT`, which the web process reads as the same end.
    """
    lower_priority()  # before the warm-up: seconds of a core that the web process may need more
    import torch  # the slow import happens here, before anyone waits for this worker

    torch.set_num_threads(1)
    warm_up_torch()
    ready.set()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        while True:
            try:
                spec = spec_conn.recv()
            except (EOFError, OSError):
                return  # the server went away, or has enough idle workers
            memory_limit.apply(spec.memory_limit)
            if not worker_main(spec, control, conn.send):
                return
    except MemoryError:
        os._exit(memory_limit.OUT_OF_MEMORY_EXIT)
