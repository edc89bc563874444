"""Training on a Ray cluster: the same `Job` interface, with each job in a Ray actor on some node.

Why: one web server's machine has a few cores; a class needs more. With
`RNN_LAB_RAY_ADDRESS` set (`auto`, `host:6379` or `ray://host:10001`) every job
becomes a named actor (one CPU, or one GPU when the cluster has GPUs) that
builds its trainers from the same picklable `JobSpec` as a worker process and
runs the same `worker_main`, so the events are the process backend's:

    ("epoch", run, metrics, norms, clipped, samples, checkpoint_bytes)
    ("status", "paused" | "running")
    ("end", run, end_event_fields)
    ("finish", status, message)

The actor keeps them in a list; the driver thread in the web process
long-polls `poll(since)` (an answer as soon as an event exists), folds them
into the job with `process_backend._apply` and writes them to the run store,
checkpoint bytes included, after every epoch. A node that leaves therefore
loses at most the epoch in progress: the run is marked "interrupted" and
resumes from the store on any node.

The actor is threaded (training in one thread, calls served by others), so
Pause / Resume / Step / Stop answer between two minibatches. Its name is
`rnnlab-job-<job id>` in one namespace, so any web server on the same cluster
(and the same store) can find it and control it for the run's owner. Its
lifetime is the starting server's Ray job: if that server dies, so do its
actors, and the next server marks the runs interrupted.

This module is the only one that imports Ray, and only when a function here
is called: without `RNN_LAB_RAY_ADDRESS` Ray is never imported.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import Cause, LabError
from .process_backend import _apply, spec_from_trainers, worker_main
from .training import Control

ADDRESS_ENV = "RNN_LAB_RAY_ADDRESS"
NAMESPACE = "rnn-lyrics-lab"
ACTOR_PREFIX = "rnnlab-job-"
POLL_WAIT = 0.25  # seconds an actor holds a poll open waiting for an event (the latency floor is the RPC)
CALL_TIMEOUT = 10.0  # a poll that takes longer than this (plus POLL_WAIT) counts as one missed answer
MISSED_POLLS = 3  # this many missed answers in a row: the node or the cluster is gone
CONTROL_TIMEOUT = 5.0  # a control call from another server waits this long for the actor's answer
PROBE_TIMEOUT = 3.0  # TCP probe of an explicit cluster address before `ray.init`, so a dead host fails fast
LM_CORE = Path(__file__).resolve().parent

_connected: str | None = None  # the address this process joined
_connect_lock = threading.Lock()
_actor_class: Any = None


class RayUnavailable(LabError):
    """Ray is not installed or the cluster cannot be reached (the app falls back to the local backend)."""


def configured_address() -> str:
    """`RNN_LAB_RAY_ADDRESS`, stripped; "" means: no Ray."""
    return os.environ.get(ADDRESS_ENV, "").strip()


def actor_name(job_id: str) -> str:
    return ACTOR_PREFIX + job_id


def _probe(address: str) -> None:
    """Fail in seconds (not minutes) when an explicit host:port does not answer."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.removeprefix("ray://").split("/")[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(
            "error.ray.bad_address",
            address=address,
        )
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT):
            pass
    except OSError as exc:
        raise RayUnavailable(
            "error.ray.no_answer",
            address=address,
            reason=str(exc.strerror or exc),
        ) from exc


def connect(address: str) -> None:
    """Join the cluster at `address` once per process; `RayUnavailable` says why not (never another error)."""
    global _connected
    with _connect_lock:
        if _connected is not None:
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailable(
                "error.ray.not_installed",
            ) from exc
        _probe(address)
        try:
            ray.init(
                address=address,
                namespace=NAMESPACE,
                # Workers on other machines import lm_core from here; torch must be installed there.
                runtime_env={"py_modules": [str(LM_CORE)], "env_vars": {"OMP_NUM_THREADS": "1"}},
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        except Exception as exc:  # any failure to join means: train locally, and say why
            raise RayUnavailable(
                "error.ray.cannot_join",
                address=address,
                kind=type(exc).__name__,
                cause=Cause(exc),
            ) from exc
        _connected = address


def disconnect() -> None:
    """Leave the cluster (tests and benchmarks; a server stays joined for its lifetime)."""
    global _connected
    import ray

    with _connect_lock:
        if ray.is_initialized():
            ray.shutdown()
        _connected = None


def cluster_cpus() -> int:
    """CPUs of the whole cluster (how many runs can train at once)."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))


class _EventList:
    """Inside the actor: the `send`/`close` a pipe offers `worker_main`, into a list polled by the driver."""

    def __init__(self) -> None:
        self.events: list[tuple[float, tuple]] = []
        self.closed = False
        self.cond = threading.Condition()

    def send(self, message: tuple) -> None:
        with self.cond:
            self.events.append((time.time(), message))
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class _KeptSlot:
    """A CPU slot that is never given back: Ray granted the actor its CPU, and a paused actor keeps it.

    `worker_main` clears the slot as a run pauses and waits for it on Resume (the local backends lend a
    paused run's slot to the queue); on Ray the cluster's scheduler owns CPUs, so there is nothing to lend.
    """

    def clear(self) -> None:
        pass

    def set(self) -> None:
        pass

    def is_set(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return True


class _ActorControl(Control):
    """`training.Control` with the slot interface `worker_main` expects of a worker's control."""

    def __init__(self) -> None:
        super().__init__()
        self._slot = _KeptSlot()

    def wait_for_slot(self) -> None:
        return


class RunActor:
    """One job on a Ray worker: trains in a thread, answers polls and controls from other threads."""

    def __init__(self) -> None:
        self.control = _ActorControl()
        self.events = _EventList()
        self.thread: threading.Thread | None = None
        self.watched = 0.0  # when a page on another server last showed this run (see `touch`)

    def start(self, spec: Any, paused: bool, stopped: bool, step: bool) -> str:
        """Begin training `spec` (with what was pressed while it queued); returns this node's id."""
        import ray

        if stopped:
            self.control.stop()
        elif paused:
            self.control.pause()
        self.control._pause_after_epoch = step
        self.thread = threading.Thread(
            target=worker_main, args=(spec, self.control, self.events), name="train", daemon=True
        )
        self.thread.start()
        return ray.get_runtime_context().get_node_id()

    def poll(self, since: int, wait: float = POLL_WAIT) -> tuple[list[tuple[float, tuple]], bool, float]:
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

        _actor_class = ray.remote(max_concurrency=8, max_restarts=0, max_task_retries=0)(RunActor)
    return _actor_class


class RayControl(Control):
    """The web process's control of a Ray job: kept here (for the page) and forwarded to the actor."""

    def __init__(self) -> None:
        super().__init__()
        self.actor: Any = None

    def _forward(self, method: str) -> None:
        if self.actor is not None:
            # A gone actor raises here; the driver thread reports that run interrupted instead.
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


def _interrupted(job: Any, why: str) -> None:
    epochs = min(len(t.history) for t in job.trainers)
    job._finish("interrupted", f"Interrupted at epoch {epochs} ({why}); resume it from its checkpoint on My runs.")


def run_on_ray(job: Any, acquire: Any, release: Any) -> None:
    """Driver thread in the web process for a `RayJob`: an actor, its events, and the run store."""
    import ray
    from ray.exceptions import GetTimeoutError

    from .jobs import MAX_STEP_TRACE

    actor = None
    try:
        acquire(job)
        if job.control.stopped:
            job._finish("stopped", "Stopped before it started.")
            return
        job._started = time.time()
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        actor = (
            _remote_class().options(name=actor_name(job.id), namespace=NAMESPACE, num_cpus=1, num_gpus=gpus).remote()
        )
        control = job.control
        started = actor.start.remote(
            spec_from_trainers(job), control.paused, control.stopped, control._pause_after_epoch
        )
        # The actor may wait for a free CPU on the cluster: the job stays "queued" and can be stopped meanwhile.
        while not ray.wait([started], timeout=0.5)[0]:
            if control.stopped:
                job._finish("stopped", "Stopped before it started.")
                return
        job.node_id = ray.get(started)
        control.actor = actor
        if control.stopped:  # pressed between start and now
            actor.stop.remote()
        since, missed, finished = 0, 0, False
        while not finished:
            try:
                events, closed, watched = ray.get(actor.poll.remote(since, POLL_WAIT), timeout=CALL_TIMEOUT + POLL_WAIT)
            except GetTimeoutError:
                missed += 1
                if missed >= MISSED_POLLS:
                    _interrupted(job, "the Ray cluster stopped answering")
                    return
                continue
            missed = 0
            now = time.time()
            job.last_seen = max(job.last_seen, watched)  # watched through another server counts as watched
            for stamp, message in events:
                if message[0] == "epoch":
                    job.event_lags.append(now - stamp)
                finished = _apply(job, message, MAX_STEP_TRACE) or finished
            since += len(events)
            if closed and not events and not finished:
                job._finish("error", "Training failed: the Ray worker ended without a result.")
                return
    except Exception as exc:  # noqa: BLE001 -- a node or the cluster went away: a clear state, never a traceback
        if _is_ray_error(exc):
            _interrupted(job, f"the Ray node running it left or the cluster was lost: {type(exc).__name__}")
        else:
            traceback.print_exc()
            job._finish("error", f"Training failed: {type(exc).__name__}: {exc}")
    finally:
        job.control.actor = None
        if actor is not None:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)  # give its CPU back now, not when the server exits
        release()


def _is_ray_error(exc: BaseException) -> bool:
    from ray.exceptions import RayError

    return isinstance(exc, RayError | ConnectionError)


def actor_alive(job_id: str) -> bool:
    """Whether some server's actor for `job_id` is on the cluster (its run is live, even if not ours)."""
    import ray

    try:
        ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
    except ValueError:
        return False
    except Exception:  # noqa: BLE001 -- cluster unreachable: nothing is known to be alive
        return False
    return True


def control_remote(job_id: str, action: str) -> bool:
    """Pause/resume/step_epoch/stop/touch the actor of `job_id`, wherever it was started; False if it is gone.

    The caller checks ownership first (the run store knows each run's owner).
    """
    import ray

    if action not in ("pause", "resume", "step_epoch", "stop", "touch"):
        raise ValueError(action)
    try:
        actor = ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
        return bool(ray.get(getattr(actor, action).remote(), timeout=CONTROL_TIMEOUT))
    except Exception:  # noqa: BLE001 -- gone or unreachable: the page says so
        return False
