"""Between a training job and the run store: what a job writes, and how a stored run is rebuilt.

A job calls its `Recorder` from the worker at the few moments that matter
(registered, epoch finished, status changed, ended), so the store always holds
the last finished epoch of every run: metrics, and a checkpoint with weights,
optimiser state, history and the sampler's RNG state. `rebuild_trainers`
turns those back into trainers that continue exactly where the run stopped:
the resumed curve equals the one an uninterrupted run would have drawn.
"""

from __future__ import annotations

import time

from . import checkpoint
from .checkpoint import Checkpoint
from .corpus import Corpus
from .errors import Cause, CheckpointError, LabError
from .runstore import RunRecord, RunStore
from .training import EndEvent, EpochEvent, TrainConfig, Trainer

JOB_KEY = "_job"  # job-level settings kept inside each run's stored config (TrainConfig ignores the key)


def run_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index}"


class Recorder:
    """Writes one job's runs to the store; every call is safe (the store never raises on a write)."""

    def __init__(self, store: RunStore, job_id: str, owner: str, kind: str, labels: list[str]) -> None:
        self.store, self.job_id, self.owner, self.kind, self.labels = store, job_id, owner, kind, labels
        self.job_settings: dict = {}

    def register(self, trainers: list[Trainer], resumed: bool = False, **job_settings: object) -> list[str]:
        """Record the job's runs (or mark resumed ones queued again); returns labels the quota evicted."""
        evicted: list[str] = []
        now = time.time()
        for i, trainer in enumerate(trainers):
            rid = run_id(self.job_id, i)
            if resumed and self.store.run(rid, self.owner) is not None:
                self.store.set_status(rid, "queued", "", planned=trainer.config.epochs)
                continue
            digest = self.store.save_corpus(trainer.corpus.text)
            config = {**trainer.config.to_dict(), JOB_KEY: job_settings}
            record = RunRecord(
                id=rid,
                job_id=self.job_id,
                run_index=i,
                owner=self.owner,
                kind=self.kind,
                label=self.labels[i],
                config=config,
                corpus_name=trainer.corpus.name,
                corpus_hash=digest,
                status="queued",
                message="",
                epoch=trainer.epoch,
                planned=trainer.config.epochs,
                best_perplexity=min((e.perplexity for e in trainer.history), default=None),
                created=now,
                updated=now,
                checkpoint_bytes=0,
                group_labels=list(self.labels),
            )
            evicted += self.store.add_run(record)
            if trainer.history:  # started from a checkpoint: keep its curve and weights with the run
                for event in trainer.history:
                    self.store.record_epoch(rid, event.to_dict(), None)
                self.store.record_epoch(
                    rid, trainer.history[-1].to_dict(), checkpoint.to_bytes(checkpoint.from_trainer(trainer))
                )
        return evicted

    def epoch(self, index: int, event: EpochEvent, ckpt: Checkpoint, samples: dict | None = None) -> None:
        self.epoch_data(index, event.to_dict(), checkpoint.to_bytes(ckpt))

    def epoch_data(self, index: int, metrics: dict, ckpt_bytes: bytes | None) -> None:
        """The same, from plain data (what a worker process sends)."""
        self.store.record_epoch(run_id(self.job_id, index), metrics, ckpt_bytes)

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


def rebuild_trainers(
    store: RunStore, job_id: str, owner: str, extra_epochs: int = 0
) -> tuple[list[Trainer], list[str], str, dict] | None:
    """Trainers that continue the owner's stored job `job_id` from its last checkpoints.

    An interrupted run goes on to its planned epochs; a finished one gets
    `extra_epochs` more. None if the job is not the owner's; a `LabError` says
    what is missing when it cannot be rebuilt.
    """
    records = sorted((r for r in store.runs(owner) if r.job_id == job_id), key=lambda r: r.run_index)
    if not records:
        return None
    trainers = [_rebuild(store, record, extra_epochs) for record in records]
    settings = records[0].config.get(JOB_KEY) or {}
    return trainers, [r.label for r in records], records[0].kind, settings


def _rebuild(store: RunStore, record: RunRecord, extra_epochs: int) -> Trainer:
    text = store.corpus_text(record.corpus_hash)
    if text is None:
        raise LabError(
            "error.runs.text_missing",
            label=record.label,
        )
    corpus = Corpus.from_text(text, record.corpus_name, max_chars=None)
    config = TrainConfig.from_dict(record.config)
    path = store.checkpoint_path(record.id)
    ckpt = None
    if path.is_file():
        try:
            ckpt = checkpoint.load_own(path)
        except CheckpointError as exc:
            raise LabError(
                "error.runs.checkpoint_unreadable",
                label=record.label,
                cause=Cause(exc),
            ) from exc
    done = len(ckpt.history) if ckpt else 0
    config.epochs = max(record.planned, done + extra_epochs)
    trainer = Trainer(corpus, config)
    if ckpt is not None:
        checkpoint.restore_trainer(ckpt, trainer)
    return trainer
