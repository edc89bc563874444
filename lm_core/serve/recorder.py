"""Between a job and the run store: what a job writes, and how a stored run is rebuilt to continue.

A job calls its `Recorder` at the few moments that matter (registered, epoch
finished, status changed, ended), so the store always holds the last finished
epoch of every run: metrics, and a checkpoint with weights, optimiser state,
history and the sampler's RNG state. `rebuild_trainers` turns those back into
trainers (`checkpoint.resume`) that continue exactly where the run stopped:
the resumed curve equals the one an uninterrupted run would have drawn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..checkpoint import load_own, resume, to_bytes
from ..corpus import Corpus
from ..errors import Cause, CheckpointError, LabError
from ..training import EndEvent, EpochEvent, TrainConfig, Trainer
from .run import Run
from .store import RunRecord, RunStore, text_hash

JOB_KEY = "_job"  # job-level settings kept inside each run's stored config (TrainConfig ignores the key)


def stored_corpus(store: RunStore, job_id: str, owner: str, index: int) -> Corpus | None:
    """The corpus of a stored run, as its worker trained on it (document starts included); None when missing."""
    record = store.run(run_id(job_id, index), owner)
    text = store.corpus_text(record.corpus_hash) if record is not None else None
    return None if text is None else Corpus.from_text(text, record.corpus_name, max_chars=None)


def run_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index}"


class Recorder:
    """Writes one job's runs to the store; every call is safe (the store never raises on a write)."""

    def __init__(self, store: RunStore, job_id: str, owner: str, kind: str, labels: list[str]) -> None:
        self.store, self.job_id, self.owner, self.kind, self.labels = store, job_id, owner, kind, labels

    def has_corpus(self, index: int) -> bool:
        """Whether the store holds run `index`'s text (so the web process may let go of its own copy; reading it
        back checks its hash)."""
        record = self.store.run(run_id(self.job_id, index), self.owner)
        return record is not None and self.store.corpus_path(record.corpus_hash).is_file()

    def corpus(self, index: int) -> Corpus | None:
        return stored_corpus(self.store, self.job_id, self.owner, index)

    def register(self, runs: list[Run], resumed: bool = False, **job_settings: object) -> list[str]:
        """Record the job's runs (or mark resumed ones queued again); returns labels the quota evicted."""
        evicted: list[str] = []
        now = time.time()
        for i, run in enumerate(runs):
            rid = run_id(self.job_id, i)
            if resumed and self.store.run(rid, self.owner) is not None:
                self.store.set_status(rid, "queued", "", planned=run.config.epochs)
                continue
            record = RunRecord(
                id=rid,
                job_id=self.job_id,
                run_index=i,
                owner=self.owner,
                kind=self.kind,
                label=self.labels[i],
                config={**run.config.to_dict(), JOB_KEY: job_settings},
                corpus_name=run.corpus.name,
                corpus_hash=text_hash(text := run.corpus.document_text()),  # document starts kept
                status="queued",
                message="",
                epoch=len(run.history),
                planned=run.config.epochs,
                best_perplexity=min((e.perplexity for e in run.history), default=None),
                created=now,
                updated=now,
                checkpoint_bytes=0,
                group_labels=list(self.labels),
            )
            evicted += self.store.add_run(record, text)
            if run.history:  # started from a checkpoint: keep its curve and weights with the run
                for event in run.history:
                    self.store.record_epoch(rid, event.to_dict(), None)
                self.store.record_epoch(rid, run.history[-1].to_dict(), to_bytes(run.published))
        return evicted

    def epoch(self, index: int, metrics: EpochEvent, checkpoint: bytes) -> None:
        self.store.record_epoch(run_id(self.job_id, index), metrics.to_dict(), checkpoint)

    def status(self, status: str) -> None:
        for i in range(len(self.labels)):
            self.store.set_status(run_id(self.job_id, i), status)

    def run_end(self, index: int, end: EndEvent) -> None:
        """One run ended before the others (early stopping): its status now, not when the job ends."""
        self.store.set_status(run_id(self.job_id, index), end.status, end.message)

    def finish(self, status: str, message: str, ends: list[EndEvent | None]) -> None:
        for i, end in enumerate(ends):
            self.store.set_status(
                run_id(self.job_id, i), end.status if end else status, end.message if end else message
            )


@dataclass
class StoredJob:
    """What continues a stored job: its trainers and how the job was set up."""

    trainers: list[Trainer]
    labels: list[str]
    kind: str
    prefixes: tuple[str, ...]
    sample_every: int


def rebuild_trainers(store: RunStore, job_id: str, owner: str, extra_epochs: int = 0) -> StoredJob | None:
    """Trainers that continue the owner's stored job `job_id` from its last checkpoints.

    An interrupted run goes on to its planned epochs; a finished one gets
    `extra_epochs` more. None if the job is not the owner's; a `LabError` says
    what is missing when it cannot be rebuilt (its text, or the checkpoint of
    a run that finished an epoch: it never starts again from fresh weights).
    """
    records = sorted((r for r in store.runs(owner) if r.job_id == job_id), key=lambda r: r.run_index)
    if not records:
        return None
    settings = records[0].config.get(JOB_KEY) or {}
    return StoredJob(
        trainers=[_rebuild(store, record, extra_epochs) for record in records],
        labels=[r.label for r in records],
        kind=records[0].kind,
        prefixes=tuple(p for p in settings.get("prefixes", []) if isinstance(p, str)),
        sample_every=int(settings.get("sample_every", 10)),
    )


def _rebuild(store: RunStore, record: RunRecord, extra_epochs: int) -> Trainer:
    corpus = stored_corpus(store, record.job_id, record.owner, record.run_index)
    if corpus is None:
        raise LabError(
            "error.runs.text_missing",
            label=record.label,
        )
    config = TrainConfig.from_dict(record.config)
    config.epochs = record.planned
    path = store.checkpoint_path(record.id)
    ckpt = None
    if record.epoch > 0 and not path.is_file():
        # Fresh weights would retrain epochs 1.. over the stored ones: the run's history would be rewritten.
        raise LabError("error.runs.checkpoint_missing", label=record.label)
    if path.is_file():
        try:
            ckpt = load_own(path)  # the server's own file
        except CheckpointError as exc:
            raise LabError(
                "error.runs.checkpoint_unreadable",
                label=record.label,
                cause=Cause(exc),
            ) from exc
    return resume(ckpt, corpus, config, more_epochs=extra_epochs)
