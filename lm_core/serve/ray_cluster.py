"""Joining a Ray cluster, and finding a job's actor on it from any server.

With `RNN_LAB_RAY_ADDRESS` set (`auto`, `host:6379` or `ray://host:10001`) the
app trains on that cluster (`ray_backend`). Every job's actor is named
`rnnlab-job-<job id>` in one namespace, so any web server on the same cluster
(and the same run store) can find it, see that it is live, and control it for
the run's owner. Ray is imported only inside these functions: without the
variable it is never imported.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from ..errors import Cause, LabError

ADDRESS_ENV = "RNN_LAB_RAY_ADDRESS"
NAMESPACE = "rnn-lyrics-lab"
ACTOR_PREFIX = "rnnlab-job-"
CONTROL_TIMEOUT = 5.0  # a control call from another server waits this long for the actor's answer
PROBE_TIMEOUT = 3.0  # TCP probe of an explicit cluster address before `ray.init`, so a dead host fails fast
LM_CORE = Path(__file__).resolve().parents[1]  # shipped to the cluster's workers, which import it from there
ACTIONS = ("pause", "resume", "step_epoch", "stop", "touch")

_connected: str | None = None  # the address this process joined
_connect_lock = threading.Lock()


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


def is_ray_error(exc: BaseException) -> bool:
    """A node or the cluster went away (the run is interrupted, and resumable), not a fault of the training."""
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

    if action not in ACTIONS:
        raise ValueError(action)
    try:
        actor = ray.get_actor(actor_name(job_id), namespace=NAMESPACE)
        return bool(ray.get(getattr(actor, action).remote(), timeout=CONTROL_TIMEOUT))
    except Exception:  # noqa: BLE001 -- gone or unreachable: the page says so
        return False
