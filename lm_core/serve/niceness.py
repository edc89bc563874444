"""Workers give way to the web process: each runs at a lower CPU priority than the server that started it.

Why: the web process draws every page and answers every click and poll of a class; a worker that trains
at the same priority takes a core from it whenever they share one. When the web process needs the CPU the
kernel now gives it at once, and a worker loses nothing while the web process is idle. At nice 10 a worker
weighs 110 against the web process's 1,024 (Linux CFS), so when they share a core the web process gets
about 90 % of it.
"""

from __future__ import annotations

import os

NICE_ENV = "RNN_LAB_WORKER_NICE"  # 0..19; a worker reads it when it starts (the operator's, never a visitor's)
DEFAULT_NICENESS = 10


def _niceness() -> int:
    """How much nicer than the server a worker runs: `RNN_LAB_WORKER_NICE`, else `DEFAULT_NICENESS`."""
    try:
        value = int(os.environ.get(NICE_ENV, ""))
    except ValueError:
        return DEFAULT_NICENESS
    return min(19, max(0, value))


WORKER_NICENESS = _niceness()
_lowered = False


def lower_priority() -> None:
    """In a worker (a process of the pool or a Ray actor): run `WORKER_NICENESS` nicer than now, once.

    A platform without niceness (or a system that forbids it) trains at the inherited priority.
    """
    global _lowered
    if _lowered:
        return
    _lowered = True
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS))
    except (AttributeError, OSError):
        pass
