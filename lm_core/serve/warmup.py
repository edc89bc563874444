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


def warm_up_in_background() -> threading.Thread:
    """`warm_up_torch` on a daemon thread, so a server's first page is not held up by it."""
    thread = threading.Thread(target=warm_up_torch, name="torch-warm-up", daemon=True)
    thread.start()
    return thread
