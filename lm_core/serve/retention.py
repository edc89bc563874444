"""How long a server keeps a job: a closed tab's run is stopped, an unwatched finished one slims down, then goes.

The server is shared by a class and a new browser identity costs nothing, so
finished jobs are bounded per owner and in all (superseded and oldest first),
and so are the bytes their weights and optimiser states hold in the web
process: a count alone lets a few large models take the machine's memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..limits import MAX_FINISHED_BYTES, MAX_FINISHED_PER_OWNER, MAX_FINISHED_TOTAL, RELEASE_UNWATCHED_AFTER
from .job import Job

# A done job's corpus of at least this many characters is dropped once nobody looks at the job (the run store
# keeps it; a page that asks reads it back): a pasted 19 MB text and its ids take ~80 MB of the web process.
LET_GO_CHARS = 200_000


@dataclass
class Retention:
    reap_after: float = 120.0  # a running job nobody polled for this long is stopped; a done one lets go of its text
    release_after: float = RELEASE_UNWATCHED_AFTER  # a finished one nobody looked at keeps only weights and curves
    forget_after: float = 6 * 3600  # ... and after this long it is dropped
    per_owner: int = MAX_FINISHED_PER_OWNER
    total: int = MAX_FINISHED_TOTAL
    total_bytes: int = MAX_FINISHED_BYTES  # weights and optimiser states of the finished jobs kept
    freed: bool = False  # the last sweep let go of something: its caller hands the memory back to the system

    def sweep(self, jobs: list[Job], now: float) -> tuple[list[str], list[str]]:
        """Stop, release or drop what `now` calls for: (ids stopped or dropped, ids to drop)."""
        touched, drop = [], []
        let_go = False
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
                job.let_go_of_corpora(LET_GO_CHARS)
            elif job.done and idle > self.reap_after and job.let_go_of_corpora(LET_GO_CHARS):
                let_go = True
        beyond = to_drop([j for j in jobs if j.id not in drop], self.per_owner, self.total)
        kept = [j for j in jobs if j.id not in drop and j.id not in beyond]
        heavy = over_budget(kept, self.total_bytes)
        self.freed = let_go or bool(drop or beyond or heavy)
        return touched + beyond + heavy, drop + beyond + heavy


def drop_order(jobs: list[Job]) -> list[Job]:
    """The done jobs among `jobs`, the first to go first: superseded runs (a page shows only its owner's latest
    run of that kind), then the oldest."""
    latest: dict[tuple[str, str], Job] = {}
    for job in jobs:
        key = (job.owner, job.kind)
        if key not in latest or job.created > latest[key].created:
            latest[key] = job
    return sorted((j for j in jobs if j.done), key=lambda j: (latest[(j.owner, j.kind)] is j, j.created))


def to_drop(jobs: list[Job], per_owner: int, total: int) -> list[str]:
    """Ids of the done jobs beyond `per_owner` per owner and `total` in all (see `drop_order`).

    Running and queued jobs never count: a new Train click is never refused, an old finished run makes room
    instead.
    """
    kept: dict[str, int] = {}
    dropped = []
    for job in reversed(drop_order(jobs)):
        mine = kept.get(job.owner, 0)
        if mine >= per_owner or sum(kept.values()) >= total:
            dropped.append(job.id)
        else:
            kept[job.owner] = mine + 1
    return dropped


def over_budget(jobs: list[Job], budget: int) -> list[str]:
    """Ids of the done jobs to drop so that what the done jobs hold fits `budget` bytes.

    First the jobs release their optimiser states, in `drop_order` (Continue then starts a fresh optimiser,
    the weights stay); only if that is not enough do jobs go, in the same order.
    """
    order = drop_order(jobs)
    held = {job.id: job.held_bytes() for job in order}
    total = sum(held.values())
    for job in order:
        if total <= budget:
            return []
        if not job.released:
            job.release()
            slimmer = job.held_bytes()
            total -= held[job.id] - slimmer
            held[job.id] = slimmer
    dropped = []
    for job in order:
        if total <= budget:
            break
        dropped.append(job.id)
        total -= held[job.id]
    return dropped
