"""What every backend offers the job manager: a control for a new job, and the body of its driver thread.

A backend is one file (`thread_backend`, `process_backend`, `ray_backend`).
One that trains outside the web process writes a `driver.Channel` and an
`open` for it, and launches `driver.run_remote`; its worker runs
`worker.worker_main`, which speaks the events of `events`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..training import Control, Trainer
from .job import Job
from .slots import Slots


class Backend:
    name = ""

    def new_control(self) -> Control:
        """The control a new job's buttons flip (a backend may hand the job its worker's later)."""
        return Control()

    def launch(self, job: Job, trainers: list[Trainer], slots: Slots) -> Callable[[], None]:
        """The body of `job`'s driver thread. It alone may keep `trainers` (the job already copied their
        starting point): a backend that trains elsewhere lets go of them here."""
        raise NotImplementedError

    def shutdown(self, timeout: float) -> None:
        """The server stops: let go of what the backend keeps between jobs."""

    # Servers sharing one cluster (Ray): a job this server does not drive may be live on another.
    def live_elsewhere(self, job_id: str) -> bool:
        """Whether another server's worker trains `job_id` now (so this one must not resume it)."""
        return False

    def control_remote(self, job_id: str, action: str) -> bool:
        """Press `action` on another server's job; False when there is no such job (or no cluster)."""
        return False
