"""The loop every worker runs, whatever its backend: the job's runs in lockstep, told as events.

Epoch 1 of each run, then epoch 2 of each, ...: two runs being compared always
stand at the same epoch. A run that ends early (diverged, or early stopping)
drops out and the others train on. After every epoch the run's weights go out
as checkpoint bytes, so the web process never needs the model itself: with
early stopping a run's last published weights are its best by validation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..checkpoint import from_trainer, to_bytes
from ..generation import generate
from ..limits import MAX_STEP_TRACE
from ..training import Control, EndEvent, EpochEvent, StepEvent, Trainer
from .events import Emit, EpochDone, JobEnded, RunEnded

SAMPLE_LENGTH = 50  # characters of each greedy line shown under the chart


def train_lockstep(
    trainers: Sequence[Trainer],
    labels: Sequence[str],
    control: Control,
    emit: Emit,
    prefixes: Sequence[str] = (),
    sample_every: int = 10,
) -> None:
    """Train every run to its planned epochs (or until Stop), sending each epoch and end to `emit`.

    The last event is always a `JobEnded`; an exception from a trainer propagates (the caller reports it).
    """
    sample = _sampler(prefixes, max(1, sample_every))
    ends: list[EndEvent | None] = [None for _ in trainers]
    kept = [0 for _ in trainers]  # step norms sent so far per run (a job keeps MAX_STEP_TRACE)
    while True:
        live = [i for i, t in enumerate(trainers) if ends[i] is None and t.epoch < t.config.epochs]
        if not live:
            break
        for i in live:
            ends[i], sent = _one_epoch(i, trainers[i], emit, sample, MAX_STEP_TRACE - kept[i])
            kept[i] += sent
        if control.stopped:
            break
        control.epoch_done()
    emit(_job_end(trainers, labels, ends, control.stopped))


def _one_epoch(
    i: int, trainer: Trainer, emit: Emit, sample: Callable[[Trainer, int], dict[str, str]], room: int
) -> tuple[EndEvent | None, int]:
    """One epoch of run `i`: its end if the run is over (stopped, diverged, stopped early), and the norms sent."""
    norms: list[float] = []
    clipped: list[bool] = []
    for event in trainer.run_epoch():
        if isinstance(event, StepEvent):
            if len(norms) < room:
                norms.append(event.grad_norm)
                clipped.append(event.clipped)
        elif isinstance(event, EpochEvent):
            ending = trainer.patience_ran_out() or trainer.epoch >= trainer.config.epochs
            # With early stopping on, a run's last published weights are its best by validation (the
            # checkpoint names their epoch); before that, the latest, so pages follow the training live.
            ckpt = from_trainer(trainer, best=ending and trainer.config.patience > 0)
            emit(EpochDone(i, event, norms, clipped, sample(trainer, event.epoch), to_bytes(ckpt)))
        elif isinstance(event, EndEvent):  # the model is back at its last epoch's weights, already published
            emit(RunEnded(i, event, norms, clipped))
            return event, len(norms)
    if trainer.patience_ran_out():  # `Trainer.train()` would stop here; this loop drives the epochs, so it asks
        end = trainer.stop_early()
        emit(RunEnded(i, end))
        return end, len(norms)
    return None, len(norms)


def _sampler(prefixes: Sequence[str], every: int) -> Callable[[Trainer, int], dict[str, str]]:
    """Greedy lines from each prefix after epoch 1, every `every` epochs, and the last planned epoch."""

    def sample(trainer: Trainer, epoch: int) -> dict[str, str]:
        if not prefixes or (epoch % every and epoch != trainer.config.epochs and epoch != 1):
            return {}
        return {p: generate(trainer.model, trainer.corpus, p, SAMPLE_LENGTH).text for p in prefixes}

    return sample


def _job_end(
    trainers: Sequence[Trainer], labels: Sequence[str], ends: Sequence[EndEvent | None], stopped: bool
) -> JobEnded:
    """How the job ended, from how each run did: stopped, diverged (all, or some of a comparison), or finished."""
    planned = max(t.config.epochs for t in trainers)
    statuses = {e.status for e in ends if e is not None}
    if "stopped" in statuses or stopped:
        done = min(t.epoch for t in trainers)
        return JobEnded("stopped", f"Stopped after {done} of {planned} epochs; the models are kept.")
    if "diverged" in statuses:
        if len(trainers) == 1:
            return JobEnded("diverged", ends[0].message if ends[0] else "Diverged.")
        said = [f"{labels[i]}: {e.message}" for i, e in enumerate(ends) if e is not None and e.status == "diverged"]
        return JobEnded("finished", " ".join(said))
    if all(e is not None and e.early_stop for e in ends):
        return JobEnded("finished", " ".join(e.message for e in ends if e is not None))
    return JobEnded("finished", f"Finished {planned} epochs.")
