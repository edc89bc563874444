"""The server's CPU slots: at most `capacity` jobs train at once, the others wait in line and know their place."""

from __future__ import annotations

import threading

from .job import Job

WAIT_SECONDS = 0.2  # how often a waiting job looks whether it was stopped meanwhile


class Slots:
    """A first-come line for `capacity` slots; a stopped job leaves the line at once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cond = threading.Condition()
        self._running: set[str] = set()
        self._waiting: list[str] = []

    def acquire(self, job: Job) -> None:
        """Block until `job` is first in line and a slot is free (or until it is stopped), then hold one."""
        with self._cond:
            self._waiting.append(job.id)
            while job.id in self._waiting and (self._waiting[0] != job.id or len(self._running) >= self.capacity):
                if job.control.stopped:
                    break
                self._cond.wait(timeout=WAIT_SECONDS)
            if job.id in self._waiting:
                self._waiting.remove(job.id)
            self._running.add(job.id)
            self._cond.notify_all()

    def release(self, job: Job) -> None:
        """Give `job`'s slot back (idempotent: a paused job gives it back before its driver ends)."""
        with self._cond:
            self._running.discard(job.id)
            self._cond.notify_all()

    def position(self, job: Job) -> int:
        """1 for the next job to start, 2 for the one after, ...; 0 when not waiting."""
        with self._cond:
            return self._waiting.index(job.id) + 1 if job.id in self._waiting else 0

    def running(self) -> int:
        with self._cond:
            return len(self._running)
