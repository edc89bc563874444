"""The driver of a job trained outside the web process: one loop, whichever backend holds the worker.

A backend opens a `Channel` to a worker it started (a spawned process, a Ray
actor) and sent the job's spec; the driver thread then folds the worker's
events into the job until a `JobEnded`, lends the job's CPU slot to the line
while the worker is paused (where the backend lends slots), takes one again
on Resume or Step, ends a worker that ignores Stop, and turns a worker that
vanished into a failed or interrupted job, resumable from the run store.
A new backend writes its `Channel` and its `open`, and nothing else.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Protocol

from .events import JobEnded, StatusChanged, WorkerEvent
from .job import NOT_STARTED, Job, failure
from .slots import Slots

POLL_SECONDS = 0.1  # how long one `receive` waits for an event before the driver looks at the controls again
STOP_GRACE_SECONDS = 10.0  # a stopped worker gets this long to end on its own before it is ended
# A paused worker lends its CPU slot to the line only once the pause lasted this long. A student who pauses to
# read the samples and resumes keeps the slot (and the place); lending at once started a worker process for
# the next run in line at every such pause (a class of 40 pausing once each: 40 processes of ~300 MB), and
# sent the resumed run to the back of the line.
LEND_AFTER_SECONDS = 10.0


class WorkerLost(Exception):
    """The worker is gone without a `JobEnded`; `status` and `why` are how the job ends (`Job.worker_lost`)."""

    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


class Channel(Protocol):
    """The driver's end of one worker."""

    lends_slot: bool  # a paused worker gives the server's CPU slot back to the line

    def receive(self, wait: float) -> list[WorkerEvent]:
        """The events that arrived, waiting up to `wait` seconds for one; `WorkerLost` when the worker is gone."""
        ...

    def grant_slot(self) -> None:
        """After Resume or Step of a paused worker: the server gives it a CPU slot again."""
        ...

    def force_stop(self) -> None:
        """The job was stopped `STOP_GRACE_SECONDS` ago and the worker trains on: end it."""
        ...

    def close(self, finished: bool) -> None:
        """Let the worker go: after its `JobEnded` (`finished`), or after it was lost or failed."""
        ...


Open = Callable[[Job], Channel | None]  # start a worker on the job's spec; None: the job was stopped meanwhile


def run_remote(job: Job, open_channel: Open, slots: Slots) -> None:
    """Body of the driver thread of `job`: a slot, a worker, its events, and a clear end whatever happens."""
    channel: Channel | None = None
    finished = False
    try:
        slots.acquire(job)
        if job.control.stopped:
            job.finish("stopped", NOT_STARTED)
            return
        job.started()
        channel = open_channel(job)
        if channel is None:
            job.finish("stopped", NOT_STARTED)
            return
        _follow(job, channel, slots)
        finished = True
    except WorkerLost as lost:
        job.worker_lost(lost.status, lost.why)
    except Exception as exc:  # noqa: BLE001 -- a clear state for the page, never a dead thread
        traceback.print_exc()
        job.finish("error", failure(exc))
    finally:
        slots.release(job)  # the run is over: its slot goes to the next run (idempotent)
        if channel is not None:
            channel.close(finished)


def _follow(job: Job, channel: Channel, slots: Slots) -> None:
    """Fold the worker's events into the job until its `JobEnded`, minding the slot and a Stop it ignores."""
    held = True  # this job holds a CPU slot; a paused worker may lend it to the line
    paused_at: float | None = None  # when the worker said it paused, holding the slot
    stop_seen: float | None = None
    while True:
        for event in channel.receive(POLL_SECONDS):
            job.apply(event)
            if isinstance(event, JobEnded):
                return
            if event == StatusChanged("paused") and held and channel.lends_slot:
                paused_at = time.monotonic()
        control = job.control
        if paused_at is not None and (not control.paused or control.stopped):
            paused_at = None  # Resume, Step or Stop within the grace: the worker trains on with its slot
            channel.grant_slot()  # (it gave the slot back as it blocked; it waits for it again)
        elif paused_at is not None and time.monotonic() - paused_at > LEND_AFTER_SECONDS:
            paused_at = None  # a long pause: the next run in line trains meanwhile
            slots.release(job)
            held = False
        if not held and not control.paused and not control.stopped:  # Resume or Step while it had no slot
            job.set_status("queued")
            slots.acquire(job)
            held = True
            channel.grant_slot()
        if control.stopped:
            stop_seen = stop_seen or time.monotonic()
            if time.monotonic() - stop_seen > STOP_GRACE_SECONDS:
                channel.force_stop()
