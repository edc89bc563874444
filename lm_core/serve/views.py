"""What a page draws of a job: plain numbers and strings, copied from the job under its lock.

A page never reads a job's lists while its worker appends to them; it reads
a `JobView` (the job's `snapshot()`), which it may keep and compare freely.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..training import EndEvent

# failed: a worker process died; interrupted: a Ray node or the cluster went away (resumable from the store)
DONE_STATUSES = ("finished", "stopped", "diverged", "error", "failed", "interrupted")
LIVE_STATUSES = ("queued", "running", "paused")


@dataclass
class RunView:
    """What a page needs to draw one run of a job."""

    label: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    step_norms: list[float]
    step_clipped: list[bool]
    status: str
    message: str
    samples: dict[int, dict[str, str]]
    end: EndEvent | None = None  # how the run ended (diverged: epoch + 1 and step failed, with the loss)

    @property
    def alive(self) -> bool:
        """Still part of the comparison (a diverged run stops while the others go on)."""
        return self.status != "diverged"

    @property
    def stopped_early(self) -> bool:
        """Ended by early stopping: its best-by-validation weights are the ones kept."""
        return self.end is not None and self.end.early_stop


@dataclass
class JobView:
    job_id: str
    status: str  # queued | running | paused | one of DONE_STATUSES
    message: str
    queue_position: int  # 0 when not queued
    epoch: int  # epochs completed by every run still training
    planned_epochs: int
    version: int  # changes whenever a new epoch or status arrives
    elapsed: float
    eta_seconds: float | None
    tokens_per_s: float | None
    runs: list[RunView] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES


WARM_UP_EPOCHS = 1  # a run's first epoch pays one-off costs (first backward, caches, a spare warming beside it)
RECENT_EPOCHS = 15  # the estimate follows the machine's load as it is now, not as it was at the start


def seconds_left(round_seconds: Sequence[float], rounds_left: int) -> float | None:
    """About how long the `rounds_left` remaining epochs take, from this run's own measured epochs.

    Why a median of the recent epochs after the warm-up: a mean of the last five,
    the first epoch included, over-estimated by 2x (the first epoch is slow) and
    swung from 5 to 15 minutes when one epoch met a busy moment of a shared
    machine. The median ignores such a spike and the warm-up epoch counts only
    while it is the only one measured. None before any epoch is measured.
    """
    if rounds_left <= 0:
        return 0.0
    if not round_seconds:
        return None
    measured = list(round_seconds[WARM_UP_EPOCHS:]) or list(round_seconds)
    return statistics.median(measured[-RECENT_EPOCHS:]) * rounds_left


def job_view(
    job_id: str, status: str, message: str, version: int, runs: list[RunView], elapsed: float, queue_position: int
) -> JobView:
    """The view of a job whose runs are `runs`: progress, time left and speed from their histories.

    Progress counts the runs still training: a run that diverged in epoch 1, or one that early
    stopping ended, must not pin it.
    """
    planned = max(r.config["epochs"] for r in runs)
    live = [r for r in runs if r.alive and not r.stopped_early] or runs
    epoch = min(len(r.history) for r in live)
    eta = None
    if status in LIVE_STATUSES and all(r.history for r in live):
        rounds = [sum(r.history[k]["seconds"] for r in live) for k in range(epoch)]
        eta = seconds_left(rounds, planned - epoch)
    last = [r.history[-1]["tokens_per_s"] for r in live if r.history]
    tokens_per_s = sum(last) / len(last) if last else None
    return JobView(
        job_id=job_id,
        status=status,
        message=message,
        queue_position=queue_position,
        epoch=epoch,
        planned_epochs=planned,
        version=version,
        elapsed=elapsed,
        eta_seconds=eta,
        tokens_per_s=tokens_per_s,
        runs=runs,
    )
