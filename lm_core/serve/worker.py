"""A worker outside the web process (a spawned process, a Ray actor): what it is sent, and what it runs.

It gets a `JobSpec` (plain, picklable data: settings, corpus text, starting
checkpoints), rebuilds the trainers with `checkpoint.resume`, trains them in
lockstep and sends every event to its backend's `emit`. Its control is a
`WorkerControl`: the page's buttons, plus the server's CPU slot that a paused
run may lend to the line.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ..checkpoint import from_own_bytes, resume, to_bytes
from ..corpus import Corpus
from ..training import Control, TrainConfig
from .events import Emit, JobEnded, StatusChanged
from .job import Job, failure
from .lockstep import train_lockstep
from .memory_limit import OUT_OF_MEMORY, is_out_of_memory, lift, worker_memory_limit
from .niceness import lower_priority


@dataclass
class RunSpec:
    """One run, as a worker rebuilds it."""

    config: dict
    corpus_name: str
    # `Corpus.document_text()`: with the line ends between documents, so the worker's validation split falls at
    # the same whole ci as in the web process.
    corpus_text: str
    start: bytes  # checkpoint of the starting point (weights, optimiser, history, RNG)


@dataclass
class JobSpec:
    labels: list[str]
    prefixes: tuple[str, ...]
    sample_every: int
    runs: list[RunSpec]
    # Bytes of private memory the worker process may hold while it trains this job (`memory_limit`; None: no
    # limit). Decided by the web process, so the operator's setting is read in one place.
    memory_limit: int | None = None


def spec_of(job: Job) -> JobSpec:
    """What a worker needs to train `job` from where it stands: its runs' settings, corpora and checkpoints."""
    runs = [
        RunSpec(
            config=job.config(i).to_dict(),
            corpus_name=job.corpus(i).name,
            corpus_text=job.corpus(i).document_text(),
            start=to_bytes(job.checkpoint(i)),
        )
        for i in range(len(job.labels))
    ]
    return JobSpec(list(job.labels), tuple(job.prefixes), job.sample_every, runs, worker_memory_limit())


class WorkerControl(Control):
    """`training.Control` inside a worker, with the server's CPU slot.

    This one never lends its slot (on Ray the cluster's scheduler owns the CPUs,
    and a paused actor keeps its own); `process_backend.SharedControl` lends it.
    """

    def give_back_slot(self) -> None:
        """As the run pauses: a queued run may train on this slot meanwhile."""

    def has_slot(self) -> bool:
        return True

    def wait_for_slot(self) -> None:
        """On Resume or Step: block until the server grants a slot again, or the run stops."""


def worker_main(spec: JobSpec, control: WorkerControl, emit: Emit) -> bool:
    """Build the runs of `spec`, train them in lockstep under `control`, and tell `emit` everything.

    False when an allocation was refused (the memory limit stopped the job): the process is near its limit
    with a fragmented heap, so it should exit rather than train another job.
    """
    import torch

    lower_priority()  # a Ray actor comes here directly; a pool's worker lowered it as it started
    torch.set_num_threads(1)
    try:
        trainers = [
            resume(
                from_own_bytes(run.start),
                Corpus.from_text(run.corpus_text, run.corpus_name, max_chars=None),
                TrainConfig.from_dict(run.config),
            )
            for run in spec.runs
        ]
        for trainer in trainers:
            trainer.control = control
        control.on_block = lambda: (control.give_back_slot(), emit(StatusChanged("paused")))
        control.on_unblock = lambda: _take_slot(control, emit)
        emit(StatusChanged("running"))
        train_lockstep(trainers, spec.labels, control, emit, spec.prefixes, spec.sample_every)
    except Exception as exc:  # noqa: BLE001 -- reported to the page instead of a silent exit
        if is_out_of_memory(exc):
            lift()  # room to say so: the job's end is a few bytes, its trainers are still referenced here
            traceback.print_exc()  # the operator's log says where
            emit(JobEnded("failed", OUT_OF_MEMORY))
            return False
        traceback.print_exc()
        emit(JobEnded("error", failure(exc)))
    return True


def _take_slot(control: WorkerControl, emit: Emit) -> None:
    """On Resume or Step: queue for a slot like any run (unless it kept one), then train on."""
    if not control.has_slot():
        emit(StatusChanged("queued"))
        control.wait_for_slot()
    emit(StatusChanged("running"))
