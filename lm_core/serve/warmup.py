"""Torch's one-off first-use costs, paid before anyone waits for them.

Measured on the 2-core machine: a process's first optimiser construction
imports `torch._dynamo` (4.6 s quiet, 6 s under load), and the first backward
pass is slower than the rest. A worker process does this before it says it is
ready; the web server does it in the background when it starts, because every
Train click builds the run's starting point (model and optimiser) there.
"""

from __future__ import annotations

import threading


def warm_up_torch() -> None:
    """Pay torch's one-off first-use costs now, not in a run's first epoch.

    Measured on the 2-core machine: a process's first optimiser construction
    imports `torch._dynamo` (4.6 s, 6 s under load), and the first backward
    pass is slower than the rest. A spare that has done both draws a run's
    first point in the time of one epoch.
    """
    import torch

    weight = torch.zeros(4, 4, requires_grad=True)
    for make in (torch.optim.SGD, torch.optim.Adam):
        optimizer = make([weight], lr=0.1)
        torch.tanh(torch.ones(2, 4) @ weight).sum().backward()
        torch.nn.utils.clip_grad_norm_([weight], 1.0)
        optimizer.step()
        optimizer.zero_grad()


_lock = threading.Lock()
_done = False
_deferred = False


def warm_up_torch_once() -> None:
    """`warm_up_torch`, once per process whichever thread asks first (a second caller waits for the first)."""
    global _done
    with _lock:
        if not _done:
            warm_up_torch()
            _done = True


def defer_to_server_warm_up() -> None:
    """The server's own warm-up thread will call `warm_up_torch_once` after loading the models: a page's
    `warm_up_in_background` then starts nothing. Why: the first page view started it at once, and its import
    of `torch._dynamo` (seconds of pure Python, holding the interpreter lock) slowed that very page down."""
    global _deferred
    _deferred = True


def warm_up_in_background() -> threading.Thread | None:
    """`warm_up_torch_once` on a daemon thread, so a server's first page is not held up by it (None: the
    server's warm-up does it, see `defer_to_server_warm_up`)."""
    if _deferred or _done:
        return None
    thread = threading.Thread(target=warm_up_torch_once, name="torch-warm-up", daemon=True)
    thread.start()
    return thread
