"""What a worker tells the web process about the job it trains: four kinds of event, plain picklable data.

Every backend's worker sends these (a thread of the web process, a worker
process through a pipe, a Ray actor through polls), and `Job.apply` is the
one place that folds them into what the pages read, so a field is described
here once and read there once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..training import EndEvent, EpochEvent


@dataclass(frozen=True)
class EpochDone:
    """Run `run` finished an epoch: its metrics, the gradient norms of its steps, samples and weights."""

    run: int
    metrics: EpochEvent
    norms: list[float]  # per step, before clipping (only as many as the job still keeps)
    clipped: list[bool]
    samples: dict[str, str]  # prefix -> greedy line, on the epochs that sample
    checkpoint: bytes  # the weights to publish: the latest, or with early stopping ending the run its best


@dataclass(frozen=True)
class StatusChanged:
    """The worker paused, queues for a CPU slot again after Resume or Step, or trains on."""

    status: str  # "paused" | "queued" | "running"


@dataclass(frozen=True)
class RunEnded:
    """One run ended: stopped or diverged in the middle of an epoch, or stopped early after one.

    `norms` and `clipped` are the steps of the epoch it did not finish: where a gradient exploded.
    """

    run: int
    end: EndEvent
    norms: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class JobEnded:
    """The last event of a job: how it ended, in the job's own words (the pages translate by `status`)."""

    status: str  # "finished" | "stopped" | "diverged" | "error"
    message: str


WorkerEvent = EpochDone | StatusChanged | RunEnded | JobEnded
# Where a worker sends its events: `Job.apply` in a thread, a pipe's `send`, a Ray actor's event list.
Emit = Callable[[WorkerEvent], None]
