"""One run of a job as the web process keeps it: what it trains with, what it did, and the weights it published."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..baselines import Baselines
from ..checkpoint import Checkpoint, from_trainer
from ..corpus import Corpus
from ..limits import MAX_STEP_TRACE
from ..training import EndEvent, EpochEvent, TrainConfig, Trainer


@dataclass
class Run:
    """One run of a job: what it trains with, what it did so far, and the weights it published."""

    label: str
    config: TrainConfig
    corpus: Corpus
    train_chars: int  # characters of the training split (fixed when the job was built)
    baselines: Baselines | None  # the n-gram lines of this run's split
    history: list[EpochEvent]
    published: Checkpoint
    unparsed: bytes | None = None  # a newer checkpoint than `published`, parsed when first read
    norms: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)
    samples: dict[int, dict[str, str]] = field(default_factory=dict)
    end: EndEvent | None = None

    @classmethod
    def starting_from(cls, trainer: Trainer, label: str) -> Run:
        """The run `trainer` is about to train (a copy of its weights and history: the trainer is not kept)."""
        return cls(
            label=label,
            config=trainer.config,
            corpus=trainer.corpus,
            train_chars=len(trainer.train_ids),
            baselines=trainer.baselines,
            history=list(trainer.history),
            published=from_trainer(trainer),
        )

    def keep_norms(self, norms: list[float], clipped: list[bool]) -> None:
        room = max(0, MAX_STEP_TRACE - len(self.norms))
        self.norms.extend(norms[:room])
        self.clipped.extend(clipped[:room])
