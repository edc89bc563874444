"""One run of a job as the web process keeps it: what it trains with, what it did, and the weights it published."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

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
    corpus: Corpus | None  # None once a done job let go of it (`Job.let_go_of_corpora`): the run store has it
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

    def held_bytes(self) -> int:
        """Bytes of the weights and optimiser state this run keeps (and of a newer checkpoint not yet parsed)."""
        ckpt = self.published
        return tensor_bytes(ckpt.model_state) + tensor_bytes(ckpt.optimizer_state) + len(self.unparsed or b"")


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in `obj`, a tensor or dictionaries and lists of them (a state dict, an optimiser's)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0
