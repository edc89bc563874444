"""Training in worker processes: the app's default backend.

Why: in the server's own threads every run shares one interpreter (and its
lock) with every page render, so runs crawl and pages stall. Here each job's
worker is a process of `process_pool` (torch already imported); the job's
spec goes down one pipe, its events come back up another, and the page's
buttons travel through a `SharedControl`. A worker that dies without a
`JobEnded` makes the run "failed"; its last checkpoint (in the run store after
every epoch) lets My runs resume it. So does one that its memory limit stopped
(`memory_limit`): that worker is not reused, the pool starts a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..training import Trainer
from . import process_pool
from .backend import Backend
from .driver import STOP_GRACE_SECONDS, WorkerLost, run_remote
from .events import EpochDone, JobEnded, WorkerEvent
from .job import Job
from .memory_limit import OUT_OF_MEMORY, OUT_OF_MEMORY_EXIT
from .slots import Slots
from .worker import spec_of


class ProcessBackend(Backend):
    name = "process"

    def __init__(self) -> None:
        process_pool.refill_later()  # a spare worker imports torch while the server starts

    def launch(self, job: Job, trainers: list[Trainer], slots: Slots) -> Callable[[], None]:
        """The driver thread's body; the trainers are not kept (the job already has their starting point)."""
        return lambda: run_remote(job, _open, slots)

    def shutdown(self, timeout: float) -> None:
        process_pool.shutdown(timeout)


def _open(job: Job) -> ProcessChannel:
    worker = process_pool.take()
    job.use_control(worker.control)
    worker.control.grant_slot()  # the driver holds a slot for it
    worker.spec_send.send(spec_of(job))
    job.worker = worker.process
    return ProcessChannel(job, worker)


class ProcessChannel:
    """The driver's end of one worker process."""

    lends_slot = True

    def __init__(self, job: Job, worker: process_pool.Worker) -> None:
        self.job, self.worker = job, worker
        self.refilled = False
        self.spent = False  # its memory limit stopped the job: the worker exits instead of waiting for another

    def receive(self, wait: float) -> list[WorkerEvent]:
        pipe, process = self.worker.events, self.worker.process
        if not pipe.poll(wait):
            if process.is_alive() or pipe.poll(0):
                return []
            raise self._lost()
        try:
            event = pipe.recv()
        except (EOFError, OSError):
            raise self._lost() from None
        if event == JobEnded("failed", OUT_OF_MEMORY):
            self.spent = True
        if not self.refilled and isinstance(event, EpochDone | JobEnded):
            self._refill()  # its first point is drawn: now the next spare may take a core to warm up
        return [event]

    def _lost(self) -> WorkerLost:
        self.worker.process.join(STOP_GRACE_SECONDS)
        code = self.worker.process.exitcode
        return WorkerLost("failed", OUT_OF_MEMORY if code == OUT_OF_MEMORY_EXIT else f"exit code {code}")

    def grant_slot(self) -> None:
        self.worker.control.grant_slot()

    def force_stop(self) -> None:
        self.worker.process.terminate()

    def close(self, finished: bool) -> None:
        if finished and not self.spent and self.worker.process.is_alive():
            self.job.let_go_of_worker()
            process_pool.give_back(self.worker)
        else:
            self.worker.dismiss()
            self.worker.process.join(STOP_GRACE_SECONDS)
        if not self.refilled:
            self._refill()

    def _refill(self) -> None:
        self.refilled = True
        process_pool.refill_later()
