"""The backstop behind the run-memory estimate: a hard memory limit on each worker process.

`memory.check_run_memory` refuses a run whose estimate is above the per-run
budget, but an estimate can be wrong (settings nobody calibrated, a torch
upgrade). Without a limit such a run takes the machine's memory from the web
process and every other run. With one, the kernel refuses the worker's next
allocation past it: torch raises, the worker says "out of memory" and exits,
the job is failed with one sentence (resumable from its last stored epoch)
and the pool starts a fresh worker.

Which limit: RLIMIT_DATA (the process's private writable memory: heap and
anonymous mappings, what `VmData` shows), not RLIMIT_AS. A worker's address
space also holds torch's shared libraries and reserved-but-unused ranges:
measured on the lab's machine, an idle worker has VmSize 790 MB against VmData
300 MB, and a run with a 0.5 GB peak VmSize 1.0 GB against VmData 0.52 GB
(VmData follows the resident peak within a few MB). Limiting the address space
would fail normal runs on how much a library reserves (OpenMP threads, arenas).

How much: `RNN_LAB_WORKER_MEMORY` (a size such as "6G", or "off"), else the
per-run budget times the estimate's tolerance, the same arithmetic that sized
the default budget (`memory.default_run_memory`): one such worker per core
still fits beside the web server. The web process sets it per job (it goes in
the job's spec), as a soft limit under an unlimited hard one, so a reused
worker takes the next job's limit and can lift it to report its end.

Linux only: macOS does not enforce RLIMIT_DATA and Windows has no setrlimit,
so there the estimate is the only guard (the docs say so).
"""

from __future__ import annotations

import logging
import os
import sys

from ..memory import ESTIMATE_TOLERANCE, parse_size, run_memory_budget

log = logging.getLogger(__name__)

ENV = "RNN_LAB_WORKER_MEMORY"
OFF = ("off", "none", "0")
SUPPORTED = sys.platform.startswith("linux")
# A worker whose limit stopped it says so in its job's end; if even that fails, it exits with this code.
OUT_OF_MEMORY = "out of memory"
OUT_OF_MEMORY_EXIT = 75
# How torch's CPU allocator (and C++ code through pybind) says that an allocation was refused.
_ALLOCATION_REFUSED = ("can't allocate memory", "cannot allocate memory", "bad_alloc")


def worker_memory_limit() -> int | None:
    """Bytes of private memory one worker may hold: `RNN_LAB_WORKER_MEMORY`, else the budget × tolerance.

    None: no limit (the operator said "off"). A value that is not a size is logged and the default applies:
    a typo must not lift a limit.
    """
    default = int(run_memory_budget() * ESTIMATE_TOLERANCE)
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return default
    if raw.lower() in OFF:
        return None
    size = parse_size(raw)
    if size is None:
        log.warning("%s=%r is not a size (use bytes, e.g. 6G, or off); using %d", ENV, raw, default)
        return default
    return size


def apply(limit: int | None) -> None:
    """In a worker process, before it builds a job's runs: hold it to `limit` bytes (None: no limit).

    A soft limit only (the hard one stays as it was), so `lift` can raise it again.
    """
    if not SUPPORTED:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = resource.RLIM_INFINITY if limit is None else limit
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def lift() -> None:
    """After the limit stopped a run: room again, so the worker can tell its server and exit cleanly."""
    if not SUPPORTED:
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (hard, hard))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation the limit (or the machine) refused: Python's MemoryError, or torch's
    RuntimeError from its CPU allocator."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(words in text for words in _ALLOCATION_REFUSED)
