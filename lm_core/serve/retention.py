"""How long a server keeps a job: a closed tab's run is stopped, an unwatched finished one slims down, then goes.

The server is shared by a class and a new browser identity costs nothing, so
finished jobs are bounded per owner and in all (superseded and oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..limits import MAX_FINISHED_PER_OWNER, MAX_FINISHED_TOTAL, RELEASE_UNWATCHED_AFTER
from .job import Job


@dataclass
class Retention:
    reap_after: float = 120.0  # a running job nobody polled for this long is stopped
    release_after: float = RELEASE_UNWATCHED_AFTER  # a finished one nobody looked at keeps only weights and curves
    forget_after: float = 6 * 3600  # ... and after this long it is dropped
    per_owner: int = MAX_FINISHED_PER_OWNER
    total: int = MAX_FINISHED_TOTAL

    def sweep(self, jobs: list[Job], now: float) -> tuple[list[str], list[str]]:
        """Stop, release or drop what `now` calls for: (ids stopped or dropped, ids to drop)."""
        touched, drop = [], []
        for job in jobs:
            idle = now - job.last_seen
            if not job.done and idle > self.reap_after:
                job.stop()
                touched.append(job.id)
            elif job.done and idle > self.forget_after:
                touched.append(job.id)
                drop.append(job.id)
            elif job.done and idle > self.release_after:
                job.release()
        beyond = to_drop([j for j in jobs if j.id not in drop], self.per_owner, self.total)
        return touched + beyond, drop + beyond


def to_drop(jobs: list[Job], per_owner: int, total: int) -> list[str]:
    """Ids of the done jobs beyond `per_owner` per owner and `total` in all.

    Superseded runs go first (a page shows only its owner's latest run of that
    kind), then the oldest. Running and queued jobs never count: a new Train
    click is never refused, an old finished run makes room instead.
    """
    latest: dict[tuple[str, str], Job] = {}
    for job in jobs:
        key = (job.owner, job.kind)
        if key not in latest or job.created > latest[key].created:
            latest[key] = job
    done = sorted((j for j in jobs if j.done), key=lambda j: (latest[(j.owner, j.kind)] is j, j.created), reverse=True)
    kept: dict[str, int] = {}
    dropped = []
    for job in done:
        mine = kept.get(job.owner, 0)
        if mine >= per_owner or sum(kept.values()) >= total:
            dropped.append(job.id)
        else:
            kept[job.owner] = mine + 1
    return dropped
