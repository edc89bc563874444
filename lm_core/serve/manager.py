"""The process-wide job manager: every job of the server, who may see it, and when it goes.

It builds a job from a page's trainers, hands it to the backend that trains
it (`BACKENDS`), and records it in the run store. At most `max_running` jobs
train at once (`Slots`: a queued job waits and knows its place). A caller sees
or controls only the jobs it owns. Its reaper thread applies the `Retention`:
a job whose page stopped polling is stopped, an unwatched finished one gives
back its optimiser state, then goes; finished jobs are bounded.
"""

from __future__ import annotations

import threading
import time

from ..errors import LabError
from ..limits import MAX_LIVE_JOBS, MAX_LIVE_JOBS_PER_OWNER
from ..memory import check_job_memory
from ..rss import give_back_memory
from ..training import Trainer
from .backend import Backend
from .job import Job
from .process_backend import ProcessBackend
from .ray_backend import RayBackend
from .recorder import Recorder, rebuild_trainers
from .retention import Retention
from .run import Run
from .slots import Slots
from .store import RunStore
from .thread_backend import ThreadBackend
from .views import JobView

BACKENDS: dict[str, type[Backend]] = {"thread": ThreadBackend, "process": ProcessBackend, "ray": RayBackend}
BACKEND_ENV = "RNN_LAB_BACKEND"  # which local backend the app uses: "process" (its default) or "thread"


class LabFull(LabError):
    """The server (or this owner) has as many jobs queued, training or paused as it takes: try again later."""


def holds_room(job: Job) -> bool:
    """A job counts against the caps until it ends; one already told to stop is on its way out and does not."""
    return not job.done and not job.control.stopped


class JobManager:
    """Every job of the process; at most `max_running` train at the same time, `max_live` are live at all."""

    def __init__(
        self,
        max_running: int = 2,
        store: RunStore | None = None,
        backend: str = "thread",
        retention: Retention | None = None,
        max_live: int = MAX_LIVE_JOBS,
        max_live_per_owner: int = MAX_LIVE_JOBS_PER_OWNER,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.backend = backend  # its name
        self._backend = BACKENDS[backend]()
        self.store = store  # None: runs live in memory only (tests, or a data folder that cannot be used)
        self.store_error: Exception | None = None  # why there is no store, for the app to show
        self.ray_error: Exception | None = None  # why RNN_LAB_RAY_ADDRESS was set but Ray is not used
        self.ray_cpus = 0  # CPUs of the Ray cluster when runs train there
        self.interrupted: list[str] = self._mark_interrupted()
        self.evicted: dict[str, list[str]] = {}  # owner -> labels of runs the quota removed at the last submit
        self.retention = retention or Retention()
        self.slots = Slots(max_running)
        self.max_live, self.max_live_per_owner = max_live, max_live_per_owner
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # Reaping must not wait for the next visitor: a closed tab's job is stopped on time.
        self._closing = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="job-reaper", daemon=True)
        self._reaper.start()

    def _mark_interrupted(self) -> list[str]:
        """Live runs in the store that nobody drives any more: the server that ran them died.

        Several servers may share one store (Ray), so a run whose worker is live on another is left alone.
        """
        if self.store is None:
            return []
        live = {r.job_id for r in self.store.live_runs() if self._backend.live_elsewhere(r.job_id)}
        return self.store.mark_interrupted(live_jobs=live)

    # -- jobs ------------------------------------------------------------------------------------------
    def submit(
        self,
        owner: str,
        trainers: list[Trainer],
        labels: list[str] | None = None,
        *,
        prefixes: tuple[str, ...] = (),
        sample_every: int = 10,
        kind: str = "train",
        job_id: str | None = None,
    ) -> Job:
        """Start a job training `trainers` (a copy of their starting point is taken; the backend may keep them).

        `prefixes` are sampled every `sample_every` epochs; `kind` is the page that started it; `job_id`
        continues a stored job under its own id. A comparison's runs must fit one worker together
        (`check_fits`); each alone was checked when its `Trainer` was built. Raises `LabFull` beyond the caps
        (see `check_room`), before anything is recorded.
        """
        self.check_fits(trainers)
        self.reap()
        labels = labels or [t.config.model for t in trainers]
        runs = [Run.starting_from(t, label) for t, label in zip(trainers, labels, strict=True)]
        job = Job(owner, runs, self._backend.new_control(), tuple(prefixes), sample_every, kind, job_id)
        with self._lock:
            old = self._jobs.get(job.id)
            if old is not None and not old.done:
                raise ValueError(f"job {job.id} is still running")
            self._check_room(owner, job.id)  # under the lock: two sessions cannot both take the last place
            self._jobs[job.id] = job
        if self.store is not None:
            job.recorder = Recorder(self.store, job.id, owner, job.kind, job.labels)
            self.evicted[owner] = job.recorder.register(
                runs, resumed=job_id is not None, prefixes=list(job.prefixes), sample_every=job.sample_every
            )
        body = self._backend.launch(job, trainers, self.slots)
        job.thread = threading.Thread(target=body, name=f"train-{job.id}", daemon=True)
        job.thread.start()
        return job

    def check_room(self, owner: str, replacing: str | None = None, n: int = 1) -> None:
        """Raise `LabFull` when `n` new jobs of `owner` would pass a cap; `replacing`: a job it takes the place of.

        `n` > 1 is a sweep (a board's Run all values): refused whole rather than started in part.

        Pages call it before they build a model or read a checkpoint, so a full server allocates nothing for a
        click it will refuse; `submit` checks again, under its lock, as it takes the place.
        """
        with self._lock:
            self._check_room(owner, replacing, n)

    def _check_room(self, owner: str, replacing: str | None, n: int = 1) -> None:
        live = [j for j in self._jobs.values() if j.id != replacing and holds_room(j)]
        mine = sum(1 for j in live if j.owner == owner)
        if mine + n > self.max_live_per_owner:
            raise LabFull("error.jobs.owner_full", n=mine, limit=self.max_live_per_owner)
        if len(live) + n > self.max_live:
            raise LabFull("error.jobs.lab_full", limit=self.max_live)

    def live_count(self) -> int:
        """Jobs queued, training or paused now (what the caps count)."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if holds_room(j))

    @staticmethod
    def check_fits(trainers: list[Trainer]) -> None:
        """Refuse (`RunMemoryError`, naming what to lower) runs whose worker would need more than one run may use.

        One worker trains all of a job's runs in lockstep, so a comparison holds every run's corpus and weights
        at once. A page calls this before it stops the run it replaces, so a refused start loses nothing.
        """
        if len(trainers) > 1:
            check_job_memory([t.memory for t in trainers])

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

    def jobs(self) -> list[Job]:
        """Every job this server keeps (for its tests and benchmarks)."""
        with self._lock:
            return list(self._jobs.values())

    def reassign(self, old_owner: str, new_owner: str) -> int:
        """The jobs of `old_owner` in this process now belong to `new_owner` (with `RunStore.reassign`: runs
        brought along into a class); returns how many."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == old_owner]
            for job in mine:
                job.owner = new_owner
                if job.recorder is not None:
                    job.recorder.owner = new_owner
        return len(mine)

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
        self.check_room(owner, replacing=job_id)  # before its checkpoints are read and its models built
        stored = rebuild_trainers(self.store, job_id, owner, extra_epochs)
        if stored is None:
            return None
        return self.submit(
            owner,
            stored.trainers,
            stored.labels,
            kind=stored.kind,
            job_id=job_id,
            prefixes=stored.prefixes,
            sample_every=stored.sample_every,
        )

    def view(self, job: Job) -> JobView:
        return job.snapshot(self.slots.position(job))

    def queue_position(self, job: Job) -> int:
        return self.slots.position(job)

    def running_count(self) -> int:
        return self.slots.running()

    # -- jobs of other servers on the same cluster -------------------------------------------------------
    def live_elsewhere(self, job_id: str) -> bool:
        """True when another server's worker is training this job now (so it must not be resumed here)."""
        with self._lock:
            mine = job_id in self._jobs
        return not mine and self._backend.live_elsewhere(job_id)

    def control_remote(self, job_id: str, owner: str, action: str) -> bool:
        """Pause/resume/step_epoch/stop/touch the owner's run started by another server on the same cluster.

        False when this server shares no cluster, the job is not the owner's, or its worker is gone.
        """
        if self.store is None or not any(r.job_id == job_id for r in self.store.runs(owner)):
            return False
        return self._backend.control_remote(job_id, action)

    # -- reaping -----------------------------------------------------------------------------------------
    def _reap_loop(self) -> None:
        while not self._closing.wait(timeout=min(10.0, self.retention.reap_after / 4)):
            self.reap()

    def reap(self, now: float | None = None) -> list[str]:
        """Stop jobs whose page went away; release, then forget, old finished ones. Returns ids touched."""
        touched, drop = self.retention.sweep(self.jobs(), time.time() if now is None else now)
        with self._lock:
            for job_id in drop:
                self._jobs.pop(job_id, None)
        if self.retention.freed:
            give_back_memory()  # glibc would keep what was freed for this process's next allocations
        return touched

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job and wait for the threads (tests call this)."""
        self._closing.set()
        jobs = self.jobs()
        for job in jobs:
            job.stop()
        for job in jobs:
            if job.thread:
                job.thread.join(timeout)
        self._backend.shutdown(timeout)
        if self.store is not None:
            self.store.close()
