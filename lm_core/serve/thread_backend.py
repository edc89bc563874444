"""The simplest backend: a job trains in its own driver thread, in the web process (one torch thread).

Every run shares the server's interpreter with every page render, so this is
for tests and small machines; the app's default is `process_backend`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import torch

from ..training import Trainer
from .backend import Backend
from .job import NOT_STARTED, Job, failure
from .lockstep import train_lockstep
from .slots import Slots


class ThreadBackend(Backend):
    name = "thread"

    def launch(self, job: Job, trainers: list[Trainer], slots: Slots) -> Callable[[], None]:
        """The body of the job's driver thread: it trains `trainers` itself, and lets go of them when it ends."""
        return lambda: _train_here(job, trainers, slots)


def _train_here(job: Job, trainers: list[Trainer], slots: Slots) -> None:
    torch.set_num_threads(1)  # per OS thread: this is the driver's own setting
    control = job.control
    for trainer in trainers:
        trainer.control = control
    # A paused run lends its slot to the line and queues again on Resume or Step.
    control.on_block = lambda: (slots.release(job), job.set_status("paused"))
    control.on_unblock = lambda: (job.set_status("queued"), slots.acquire(job), job.set_status("running"))
    try:
        slots.acquire(job)
        if control.stopped:
            job.finish("stopped", NOT_STARTED)
            return
        job.started()
        job.set_status("running")
        train_lockstep(trainers, job.labels, control, job.apply, job.prefixes, job.sample_every)
    except Exception as exc:  # noqa: BLE001 -- the page shows this instead of the thread dying silently
        traceback.print_exc()
        job.finish("error", failure(exc))
    finally:
        slots.release(job)
