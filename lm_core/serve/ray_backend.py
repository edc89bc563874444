"""Training on a Ray cluster: each job in a named actor on some node (see `ray_cluster` for joining it).

Why: one web server's machine has a few cores; a class needs more. The actor
(one CPU, or one GPU when the cluster has GPUs) runs the same `worker_main` as
a worker process, on the same `JobSpec`, and keeps the events in a list; the
driver in the web process long-polls `poll(since)` (an answer as soon as an
event exists) and writes every epoch, checkpoint bytes included, to the run
store. A node that leaves therefore loses at most the epoch in progress: the
run is marked "interrupted" and resumes from the store on any node.

The actor is threaded (training in one thread, calls served by others), so
Pause / Resume / Step / Stop answer between two minibatches, from this server
or, by the actor's name, from any other. Its lifetime is the starting server's
Ray job: if that server dies, so do its actors, and the next server marks the
runs interrupted. Ray is imported only when a function here is called.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..training import Control, Trainer
from . import ray_cluster
from .backend import Backend
from .driver import WorkerLost, run_remote
from .events import EpochDone, WorkerEvent
from .job import Job
from .slots import Slots
from .worker import JobSpec, WorkerControl, spec_of, worker_main

POLL_WAIT = 0.25  # seconds an actor holds a poll open waiting for an event (the latency floor is the RPC)
CALL_TIMEOUT = 10.0  # a poll that takes longer than this (plus POLL_WAIT) counts as one missed answer
MISSED_POLLS = 3  # this many missed answers in a row: the node or the cluster is gone
ACTOR_OPTIONS = {"max_concurrency": 8, "max_restarts": 0, "max_task_retries": 0}

_actor_class: Any = None


class RayBackend(Backend):
    name = "ray"

    def new_control(self) -> Control:
        return RayControl()

    def launch(self, job: Job, trainers: list[Trainer], slots: Slots) -> Callable[[], None]:
        return lambda: run_remote(job, _open, slots)

    def live_elsewhere(self, job_id: str) -> bool:
        return ray_cluster.actor_alive(job_id)

    def control_remote(self, job_id: str, action: str) -> bool:
        return ray_cluster.control_remote(job_id, action)


@dataclass
class RayWorker:
    """Where a job trains on the cluster, for the tests and the benchmark."""

    node_id: str
    event_lags: list[float] = field(default_factory=list)  # seconds from an epoch's end there to its arrival here


class RayControl(Control):
    """The web process's control of a Ray job: kept here (for the page) and forwarded to its actor."""

    def __init__(self) -> None:
        super().__init__()
        self.actor: Any = None

    def _forward(self, method: str) -> None:
        if self.actor is not None:
            # A gone actor raises here; the driver reports the run interrupted instead.
            with contextlib.suppress(Exception):
                getattr(self.actor, method).remote()

    def pause(self) -> None:
        super().pause()
        self._forward("pause")

    def resume(self) -> None:
        super().resume()
        self._forward("resume")

    def step_epoch(self) -> None:
        super().step_epoch()
        self._forward("step_epoch")

    def stop(self) -> None:
        super().stop()
        self._forward("stop")


def _open(job: Job) -> RayChannel | None:
    """A new named actor for `job`, started on its spec; None if the job was stopped while the cluster queued it."""
    import ray

    control = job.control
    assert isinstance(control, RayControl)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    options = {"name": ray_cluster.actor_name(job.id), "namespace": ray_cluster.NAMESPACE, "num_gpus": gpus}
    actor = _remote_class().options(num_cpus=1, **options).remote()
    try:
        started = actor.start.remote(spec_of(job), control.stepping, control.paused, control.stopped)
        # The actor may wait for a free CPU on the cluster: the job stays "queued" and can be stopped meanwhile.
        while not ray.wait([started], timeout=0.5)[0]:
            if control.stopped:
                _kill(actor)
                return None
        job.worker = RayWorker(ray.get(started))
    except Exception as exc:
        _kill(actor)
        if ray_cluster.is_ray_error(exc):
            raise WorkerLost("interrupted", _node_lost(exc)) from exc
        raise
    control.actor = actor
    if control.stopped:  # pressed between start and now
        actor.stop.remote()
    return RayChannel(job, actor, control)


class RayChannel:
    """The driver's end of one actor: long polls for its events."""

    lends_slot = False  # the cluster's scheduler owns the CPUs; a paused actor keeps its own

    def __init__(self, job: Job, actor: Any, control: RayControl) -> None:
        self.job, self.actor, self.control = job, actor, control
        self.since = 0  # events received so far
        self.missed = 0  # polls in a row that got no answer

    def receive(self, wait: float) -> list[WorkerEvent]:
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            stamped, closed, watched = ray.get(self.actor.poll.remote(self.since), timeout=CALL_TIMEOUT + POLL_WAIT)
        except GetTimeoutError:
            self.missed += 1
            if self.missed >= MISSED_POLLS:
                raise WorkerLost("interrupted", "the Ray cluster stopped answering") from None
            return []
        except Exception as exc:
            if ray_cluster.is_ray_error(exc):
                raise WorkerLost("interrupted", _node_lost(exc)) from exc
            raise
        self.missed = 0
        self.job.touch(watched)  # watched through another server counts as watched
        now = time.time()
        if isinstance(self.job.worker, RayWorker):
            self.job.worker.event_lags.extend(now - stamp for stamp, event in stamped if isinstance(event, EpochDone))
        self.since += len(stamped)
        if closed and not stamped:
            raise WorkerLost("error", "the Ray worker ended without a result.")
        return [event for _, event in stamped]

    def grant_slot(self) -> None:
        pass

    def force_stop(self) -> None:
        pass  # Stop reached the actor, which answers it between minibatches

    def close(self, finished: bool) -> None:
        self.control.actor = None
        _kill(self.actor)  # give its CPU back now, not when the server exits


def _node_lost(exc: BaseException) -> str:
    return f"the Ray node running it left or the cluster was lost: {type(exc).__name__}"


def _kill(actor: Any) -> None:
    import ray

    with contextlib.suppress(Exception):  # already gone
        ray.kill(actor, no_restart=True)


class _EventList:
    """Inside the actor: the worker's `emit`, into a list the driver polls."""

    def __init__(self) -> None:
        self.events: list[tuple[float, WorkerEvent]] = []
        self.closed = False
        self.cond = threading.Condition()

    def send(self, event: WorkerEvent) -> None:
        with self.cond:
            self.events.append((time.time(), event))
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class RunActor:
    """One job on a Ray worker: trains in a thread, answers polls and controls from other threads."""

    def __init__(self) -> None:
        self.control = WorkerControl()  # it never lends its CPU: the cluster granted it to this actor
        self.events = _EventList()
        self.thread: threading.Thread | None = None
        self.watched = 0.0  # when a page on another server last showed this run (see `touch`)

    def start(self, spec: JobSpec, stepping: bool, paused: bool, stopped: bool) -> str:
        """Begin training `spec` (with what was pressed while it queued); returns this node's id."""
        import ray

        self.control.press(stepping, paused, stopped)
        self.thread = threading.Thread(target=self._train, args=(spec,), name="train", daemon=True)
        self.thread.start()
        return ray.get_runtime_context().get_node_id()

    def _train(self, spec: JobSpec) -> None:
        try:
            worker_main(spec, self.control, self.events.send)
        finally:
            self.events.close()

    def poll(self, since: int, wait: float = POLL_WAIT) -> tuple[list[tuple[float, WorkerEvent]], bool, float]:
        """Events after the first `since` (waiting up to `wait` s for one), whether no more will come, and
        when another server's page last showed the run."""
        with self.events.cond:
            if len(self.events.events) <= since and not self.events.closed:
                self.events.cond.wait(timeout=wait)
            return self.events.events[since:], self.events.closed, self.watched

    def touch(self) -> bool:
        """A page on another server shows this run: the starting server must not reap it as unwatched."""
        self.watched = time.time()
        return True

    def pause(self) -> bool:
        self.control.pause()
        return True

    def resume(self) -> bool:
        self.control.resume()
        return True

    def step_epoch(self) -> bool:
        self.control.step_epoch()
        return True

    def stop(self) -> bool:
        self.control.stop()
        return True


def _remote_class() -> Any:
    global _actor_class
    if _actor_class is None:
        import ray

        _actor_class = ray.remote(**ACTOR_OPTIONS)(RunActor)
    return _actor_class
